import type { GenerationStatus } from '../../entities/index.js';

/** One step of a generation as clients see it; `seq` orders events within a session. */
export interface ProgressEvent {
  sessionId: string;
  seq: number;
  status: GenerationStatus;
  progressPercentage: number;
  stage: string | null;
  storyTextDelta: string | null;
  errorMessage: string | null;
  warnings: string[];
  storyId: string | null;
}

export type ProgressUpdate = Omit<ProgressEvent, 'seq'>;

/** The latest state of a live session, with all story text streamed so far. */
export interface LiveSnapshot extends Omit<ProgressEvent, 'storyTextDelta'> {
  storyTextSoFar: string;
}

export interface ProgressSubscription extends AsyncIterable<ProgressEvent> {
  close(): void;
}

/** Carries progress from whoever runs a generation to every subscriber of it. */
export interface ProgressBus {
  publish(update: ProgressUpdate): Promise<void>;
  /** Starts buffering events at once, so nothing published after this call is missed. */
  subscribe(sessionId: string): ProgressSubscription;
  /** Null when the session is not running (not started yet, or finished). */
  snapshot(sessionId: string): Promise<LiveSnapshot | null>;
  close(): Promise<void>;
}
