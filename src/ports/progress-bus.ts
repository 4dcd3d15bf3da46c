import type { GenerationStatus } from '../entities/index.js';
import type { GenerationWarning } from '../services/generation/warnings.js';
import type { GenerationStage } from '../services/progress/progress-plan.js';

/**
 * One step of a generation as clients see it. `seq` orders events within a
 * session and `epoch` names the counter it comes from, so a counter that had to
 * start again (a Redis restart) is never mistaken for a replay.
 */
export interface ProgressEvent {
  sessionId: string;
  epoch: string;
  seq: number;
  status: GenerationStatus;
  progressPercentage: number;
  stage: string | null;
  /** The stage's code; null only for a session whose stage was saved before codes. */
  stageCode: GenerationStage | null;
  storyTextDelta: string | null;
  /**
   * The story text so far is void: the story is being written from the start
   * again (after a crash), or this event carries all of it (a subscriber's first
   * event). Clients replace what they have with this event's delta.
   */
  storyTextReset: boolean;
  errorMessage: string | null;
  warnings: string[];
  /** The warnings with their codes and pages, in the same order. */
  warningDetails: GenerationWarning[];
  storyId: string | null;
  /** Set on events about one page: the page whose text or picture this event is about. */
  pageIndex: number | null;
}

export type ProgressUpdate = Omit<ProgressEvent, 'seq' | 'epoch'>;

/** The latest state of a live session, with all story text streamed so far. */
export interface LiveSnapshot extends Omit<ProgressEvent, 'storyTextDelta' | 'storyTextReset'> {
  storyTextSoFar: string;
}

export interface ProgressSubscription extends AsyncIterable<ProgressEvent> {
  close(): void;
}

/** Carries progress from whoever runs a generation to every subscriber of it, in this process or any other. */
export interface ProgressBus {
  publish(update: ProgressUpdate): Promise<void>;
  /** Resolves once events are being received, so nothing published after it resolves is missed. */
  subscribe(sessionId: string): Promise<ProgressSubscription>;
  /** Null when the session is not running (not started yet, or finished). */
  snapshot(sessionId: string): Promise<LiveSnapshot | null>;
  close(): Promise<void>;
}

/** True when `event` comes after what `snapshot` already covered. */
export function isAfter(event: ProgressEvent, snapshot: { epoch: string; seq: number } | null): boolean {
  return !snapshot || event.epoch !== snapshot.epoch || event.seq > snapshot.seq;
}
