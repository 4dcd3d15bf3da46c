import type { Logger } from '../../logger.js';
import { GenerationCancelled, ShutdownInterrupted } from '../../services/errors.js';
import { backoffDelay, RetryLater, type JobHandler, type JobQueue, type RetryPolicy } from '../../ports/job-queue.js';

interface Waiting {
  sessionId: string;
  attempt: number;
}

/** A FIFO queue run inside this process: the default when no REDIS_URL is set. */
export class InProcessJobQueue implements JobQueue {
  private readonly waiting: Waiting[] = [];
  private readonly running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  private handler: JobHandler | null = null;
  private concurrency = 1;
  private closing = false;

  constructor(
    private readonly retry: RetryPolicy,
    private readonly logger: Logger,
  ) {}

  async enqueue(sessionId: string): Promise<void> {
    if (this.closing) throw new Error('The job queue is shutting down');
    if (this.isKnown(sessionId)) return;
    this.waiting.push({ sessionId, attempt: 1 });
    this.drain();
  }

  process(handler: JobHandler, concurrency: number): void {
    this.handler = handler;
    this.concurrency = concurrency;
    this.drain();
  }

  async cancel(sessionId: string): Promise<void> {
    const index = this.waiting.findIndex((job) => job.sessionId === sessionId);
    if (index >= 0) this.waiting.splice(index, 1);
    clearTimeout(this.retryTimers.get(sessionId));
    this.retryTimers.delete(sessionId);
    this.running.get(sessionId)?.controller.abort(new GenerationCancelled());
  }

  activeSessions(): ReadonlySet<string> {
    return new Set(this.running.keys());
  }

  async close(timeoutMs: number): Promise<void> {
    this.closing = true;
    this.waiting.length = 0;
    for (const timer of this.retryTimers.values()) clearTimeout(timer);
    this.retryTimers.clear();
    const inFlight = [...this.running.values()];
    if (inFlight.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([Promise.all(inFlight.map((job) => job.done)), timedOut]);
    clearTimeout(timer);
    // Interrupted sessions stay running in the database; the next start resumes them.
    for (const job of this.running.values()) job.controller.abort(new ShutdownInterrupted());
    await Promise.all([...this.running.values()].map((job) => job.done));
  }

  private isKnown(sessionId: string): boolean {
    return this.running.has(sessionId) || this.retryTimers.has(sessionId) || this.waiting.some((job) => job.sessionId === sessionId);
  }

  private drain(): void {
    const handler = this.handler;
    if (!handler) return;
    while (!this.closing && this.running.size < this.concurrency) {
      const next = this.waiting.shift();
      if (!next) break;
      const { sessionId, attempt } = next;
      const controller = new AbortController();
      const done = handler({ sessionId, attempt, maxAttempts: this.retry.attempts, signal: controller.signal })
        .catch((error: unknown) => {
          if (error instanceof RetryLater && attempt < this.retry.attempts && !this.closing) return this.retryLater(sessionId, attempt);
          this.logger.error({ err: error, sessionId }, 'generation job crashed');
        })
        .finally(() => {
          this.running.delete(sessionId);
          this.drain();
        });
      this.running.set(sessionId, { controller, done });
    }
  }

  private retryLater(sessionId: string, attempt: number): void {
    const delay = backoffDelay(this.retry, attempt);
    this.logger.info({ sessionId, attempt, delay }, 'generation will be retried');
    const timer = setTimeout(() => {
      this.retryTimers.delete(sessionId);
      if (this.closing) return;
      this.waiting.push({ sessionId, attempt: attempt + 1 });
      this.drain();
    }, delay);
    this.retryTimers.set(sessionId, timer);
  }
}
