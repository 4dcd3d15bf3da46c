import type { GenerationStatus } from '../entities/index.js';
import type { TextGenerationFailure } from './text-generator.js';

/** The steps of a generation that are timed; metric label values, so a fixed set. */
export enum StageKind {
  /** Planning the book (title, character sheet, page outlines and scenes): one model call with structured output. */
  PLAN = 'plan',
  /** Writing one page's text, streamed. */
  WRITE_PAGE = 'write_page',
  /** Describing a picture for a story saved before books (which has no plan). */
  DESCRIBE = 'describe',
  /** One call to the image backend (one picture, or a batch of them). */
  PAINT = 'paint',
  /** Compositing one page (matting, placing, the harmonising pass). */
  COMPOSITE = 'composite',
}

/**
 * Why a generation failed, as a metric label: the text model's failure kinds, or one of a
 * few more. A fixed set, so a label never grows with error messages.
 */
export type FailureReason =
  | TextGenerationFailure
  /** The image backend failed in a way that ended the run. */
  | 'image'
  /** Compositing (sharp) failed in a way that ended the run. */
  | 'compositing'
  /** A page could not be painted again (its scene or composite failed, or its story was deleted meanwhile). */
  | 'page-repaint'
  /** Interrupted by restarts more often than MAX_RUNS_PER_SESSION allows. */
  | 'runs-exhausted'
  /** Anything else: a bug (logged with its stack). */
  | 'unexpected';

/** How a generation ended, where the metrics see it end (FAILED goes with a reason: generationFailed). */
export type GenerationEnding = GenerationStatus.COMPLETED | GenerationStatus.CANCELLED;

/**
 * What services report about generations, for operations (Prometheus in production).
 * All durations are in seconds; no method throws.
 */
export interface GenerationMetrics {
  /** A generation was accepted and queued. */
  generationStarted(): void;
  generationEnded(ending: GenerationEnding): void;
  generationFailed(reason: FailureReason): void;
  /** One timed step finished successfully (a step that failed or was cancelled is not timed). */
  stageFinished(stage: StageKind, seconds: number): void;
  /** Time from being queued (PENDING) to the first run starting. */
  queueWait(seconds: number): void;
  /** The story writer streamed `tokens` tokens in `seconds` (one page). */
  textStreamed(tokens: number, seconds: number): void;
  /** The image backend painted `count` pictures in one call of `seconds`. */
  picturesPainted(count: number, seconds: number): void;
}
