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

/**
 * Every stage a generation goes through, in one table: its machine-readable
 * code (the GraphQL enum GenerationStage, stored per session as `stage_code`)
 * and its label for people. A new stage is one more entry here. A label may
 * carry details where the stage is shown (which page, why a retry); the code
 * never does, so clients decide on the code and show the label.
 */
export const STAGE = {
  queued: { code: 'QUEUED', label: 'Waiting in the queue' },
  waitingForStoryModel: { code: 'WAITING_FOR_STORY_MODEL', label: 'Waiting for the story model to download' },
  waitingForPictureModel: { code: 'WAITING_FOR_PICTURE_MODEL', label: 'Waiting for the picture model to download' },
  planning: { code: 'PLANNING', label: 'Planning the book' },
  writingStory: { code: 'WRITING_STORY', label: 'Writing the story' },
  writingPage: { code: 'WRITING_PAGE', label: 'Writing a page of the book' },
  painting: { code: 'PAINTING', label: 'Painting the pictures' },
  describingScene: { code: 'DESCRIBING_SCENE', label: 'Describing the scene again from the page text' },
  repaintingPage: { code: 'REPAINTING_PAGE', label: 'Painting the page again' },
  retrying: { code: 'RETRYING', label: 'Retrying after a model server failed' },
  completed: { code: 'COMPLETED', label: 'Completed' },
  failed: { code: 'FAILED', label: 'Failed' },
  cancelled: { code: 'CANCELLED', label: 'Cancelled' },
} as const satisfies Record<string, { code: string; label: string }>;

/** A stage's machine-readable code: one of STAGE's codes. */
export type GenerationStage = (typeof STAGE)[keyof typeof STAGE]['code'];

/** STAGE's codes as an enum object (code → code), for GraphQL and for comparing. */
export const GenerationStage = Object.fromEntries(Object.values(STAGE).map(({ code }) => [code, code])) as { readonly [C in GenerationStage]: C };

/** A stage as shown: its code and its label (the table's, or one with details). */
export interface Stage {
  code: GenerationStage;
  label: string;
}

/** The stage shown while a run waits to be tried again: which try comes next, and why the last one failed. */
export function retryingStage(nextAttempt: number, maxAttempts: number, reason: string): Stage {
  return { code: STAGE.retrying.code, label: `Retrying (attempt ${nextAttempt} of ${maxAttempts}): ${reason}` };
}

/** "Writing page 2 of 6" (or the one-page design's stage). */
export function writingStage(index: number, pageCount: number): Stage {
  return pageCount === 1 ? STAGE.writingStory : { code: STAGE.writingPage.code, label: `Writing page ${index + 1} of ${pageCount}` };
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

export function terminalStage(status: GenerationStatus): Stage {
  switch (status) {
    case GenerationStatus.COMPLETED:
      return STAGE.completed;
    case GenerationStatus.CANCELLED:
      return STAGE.cancelled;
    default:
      return STAGE.failed;
  }
}
