import { GenerationStatus } from '../../entities/index.js';

/**
 * Progress of a book: 0–5 % queued and starting, 5–99 % the book's work
 * weighted by the plan's size, 100 % done. Pure arithmetic, so it is
 * unit-tested on its own.
 */
export const PERCENT = {
  started: 5,
  lastBeforeDone: 99,
  completed: 100,
} as const;

export const STAGE = {
  queued: 'Waiting in the queue',
  waitingForStoryModel: 'Waiting for the story model to download',
  waitingForPictureModel: 'Waiting for the picture model to download',
  planning: 'Planning the book',
  writingStory: 'Writing the story',
  painting: 'Painting the pictures',
  describingScene: 'Describing the scene again from the page text',
  repaintingPage: 'Painting the page again',
  completed: 'Completed',
  failed: 'Failed',
  cancelled: 'Cancelled',
} as const;

const RETRYING_PREFIX = 'Retrying';

/** The stage shown while a run waits to be tried again: which try comes next, and why the last one failed. */
export function retryingStage(nextAttempt: number, maxAttempts: number, reason: string): string {
  return `${RETRYING_PREFIX} (attempt ${nextAttempt} of ${maxAttempts}): ${reason}`;
}

/** Whether a stage is one retryingStage() made. */
export function isRetryingStage(stage: string | null | undefined): boolean {
  return (stage ?? '').startsWith(`${RETRYING_PREFIX} (`);
}

/** "Writing page 2 of 6" (or the one-page design's stage name). */
export function writingStage(index: number, pageCount: number): string {
  return pageCount === 1 ? STAGE.writingStory : `Writing page ${index + 1} of ${pageCount}`;
}

/**
 * Relative cost of each piece of work, in shares of one page's writing: a
 * plan is about a page's worth of tokens; a picture on SD-Turbo takes about
 * as long as a page on a local LLM; matting and compositing are quick.
 */
export const BOOK_WEIGHTS = {
  plan: 1,
  describe: 0.5,
  page: 1,
  picture: 1,
  composite: 0.2,
} as const;

/** One piece of a book's work: the plan, a page's text, a scene described again, a picture (the character's: page null), a page's composite. */
export type BookPart =
  | { kind: 'plan' }
  | { kind: 'page'; index: number }
  | { kind: 'describe'; index: number }
  | { kind: 'picture'; page: number | null }
  | { kind: 'composite'; index: number };

/** A typical page length; a page's bar fills towards 95 % of its share as its text arrives. */
const EXPECTED_PAGE_CHARS = 500;

export function pageWritingFraction(charsWritten: number): number {
  return 0.95 * Math.min(1, Math.max(0, charsWritten) / EXPECTED_PAGE_CHARS);
}

/**
 * Tracks how much of a piece of work is done, part by part (each 0..1, never
 * going back), against a total in BOOK_WEIGHTS units fixed at the start.
 */
export class BookProgress {
  private readonly done = new Map<string, number>();

  private constructor(private readonly total: number) {}

  /** A new book: one plan, `pageCount` pages and, with pictures, one character, `pageCount` scenes and composites. */
  static ofBook(pageCount: number, withPictures: boolean): BookProgress {
    const pictures = withPictures ? (pageCount + 1) * BOOK_WEIGHTS.picture + pageCount * BOOK_WEIGHTS.composite : 0;
    return new BookProgress(BOOK_WEIGHTS.plan + pageCount * BOOK_WEIGHTS.page + pictures);
  }

  /** One page painted again: its scene and its composite, after describing the scene again when asked. */
  static ofPageRepaint(redescribe: boolean): BookProgress {
    return new BookProgress((redescribe ? BOOK_WEIGHTS.describe : 0) + BOOK_WEIGHTS.picture + BOOK_WEIGHTS.composite);
  }

  set(part: BookPart, fraction: number): void {
    if (Number.isNaN(fraction)) return;
    const key = JSON.stringify(part);
    this.done.set(key, Math.max(this.done.get(key) ?? 0, Math.min(1, Math.max(0, fraction))));
  }

  percent(): number {
    let units = 0;
    for (const [key, value] of this.done) units += BOOK_WEIGHTS[(JSON.parse(key) as BookPart).kind] * value;
    const span = PERCENT.lastBeforeDone - PERCENT.started;
    return PERCENT.started + Math.min(span, Math.floor((units / this.total) * span + 1e-9));
  }
}

/** Progress never moves backwards, whatever order the parts finish in. */
export function nextPercent(current: number, proposed: number): number {
  if (Number.isNaN(proposed)) return current;
  return Math.min(PERCENT.completed, Math.max(current, Math.round(proposed)));
}

export function terminalStage(status: GenerationStatus): string {
  switch (status) {
    case GenerationStatus.COMPLETED:
      return STAGE.completed;
    case GenerationStatus.CANCELLED:
      return STAGE.cancelled;
    default:
      return STAGE.failed;
  }
}
