import { GenerationStatus } from '../../entities/index.js';

/**
 * The seed design's progress ranges: story 10–30 %, images 30–90 %, done 100 %.
 * Pure arithmetic, so it is unit-tested on its own.
 */
export const PERCENT = {
  storyStart: 10,
  storySaved: 30,
  imagesStart: 30,
  imagesEnd: 90,
  completed: 100,
} as const;

export const STAGE = {
  queued: 'Waiting in the queue',
  writingStory: 'Writing the story',
  describing: 'Describing the character and the scene',
  painting: 'Painting the character and the background',
  compositing: 'Compositing the illustration',
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

/** A typical story length; the bar fills towards 29 % as text arrives and reaches 30 % once saved. */
const EXPECTED_STORY_CHARS = 2400;

export function storyWritingPercent(charsWritten: number): number {
  const fraction = Math.min(1, Math.max(0, charsWritten) / EXPECTED_STORY_CHARS);
  return PERCENT.storyStart + Math.floor(fraction * (PERCENT.storySaved - 1 - PERCENT.storyStart));
}

/** Shares of the images stage: describing is quick, painting is most of it, compositing is the tail. */
export const IMAGE_STAGE_WEIGHTS = {
  characterDescription: 0.075,
  backgroundDescription: 0.075,
  characterImage: 0.375,
  backgroundImage: 0.375,
  composite: 0.1,
} as const;

export type ImageStagePart = keyof typeof IMAGE_STAGE_WEIGHTS;

/** Tracks how much of the images stage is done, part by part (each part 0..1). */
export class ImageStageMeter {
  private readonly done = new Map<ImageStagePart, number>();

  set(part: ImageStagePart, fraction: number): void {
    if (Number.isNaN(fraction)) return;
    this.done.set(part, Math.max(this.done.get(part) ?? 0, Math.min(1, Math.max(0, fraction))));
  }

  percent(): number {
    let fraction = 0;
    for (const [part, value] of this.done) fraction += IMAGE_STAGE_WEIGHTS[part] * value;
    const span = PERCENT.imagesEnd - PERCENT.imagesStart;
    return PERCENT.imagesStart + Math.min(span, Math.floor(fraction * span + 1e-9));
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
