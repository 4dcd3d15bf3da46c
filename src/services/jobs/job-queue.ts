/** Runs one generation; the signal aborts when the generation is cancelled or the queue shuts down. */
export type JobHandler = (sessionId: string, signal: AbortSignal) => Promise<void>;

/** Where startGeneration puts work and where runners take it from. */
export interface JobQueue {
  /** Queues a run of the session; a session already queued or running is not queued twice. */
  enqueue(sessionId: string): Promise<void>;
  /** Starts taking jobs off the queue. */
  process(handler: JobHandler): void;
  /** Drops a queued run, or aborts a running one. */
  cancel(sessionId: string): Promise<void>;
  /** Stops taking jobs and waits (up to timeoutMs) for running ones, then aborts the rest. */
  close(timeoutMs: number): Promise<void>;
}
