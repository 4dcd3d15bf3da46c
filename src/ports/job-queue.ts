/** One run of one generation, as a queue hands it to its handler. */
export interface Job {
  sessionId: string;
  /** 1 for the first run; retries count up to maxAttempts. */
  attempt: number;
  maxAttempts: number;
  /** Aborts when the generation is cancelled (reason GenerationCancelled) or the process stops (ShutdownInterrupted). */
  signal: AbortSignal;
}

export type JobHandler = (job: Job) => Promise<void>;

/**
 * Thrown by a handler that hit a transient failure (model server unreachable,
 * timeout) and wants another attempt after a backoff. Anything else a handler
 * has to say it says through the session row; it returns normally.
 */
export class RetryLater extends Error {
  override name = 'RetryLater';
}

/** Where startGeneration puts work and where runners take it from. */
export interface JobQueue {
  /** Queues a run of the session; a session already queued or running is not queued twice. */
  enqueue(sessionId: string): Promise<void>;
  /** Starts taking jobs off the queue, at most `concurrency` at a time in this process. */
  process(handler: JobHandler, concurrency: number): void;
  /** Drops a queued run, or aborts a running one, wherever it runs. */
  cancel(sessionId: string): Promise<void>;
  /** Sessions running in this process. */
  activeSessions(): ReadonlySet<string>;
  /** Stops taking jobs; waits up to timeoutMs for running ones, then interrupts and hands back the rest. */
  close(timeoutMs: number): Promise<void>;
}

export interface RetryPolicy {
  attempts: number;
  /** Delay before the second attempt; doubles for each one after. */
  backoffMs: number;
}

export function backoffDelay(policy: RetryPolicy, attemptThatFailed: number): number {
  return policy.backoffMs * 2 ** (attemptThatFailed - 1);
}
