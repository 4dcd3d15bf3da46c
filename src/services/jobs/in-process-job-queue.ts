import type { Logger } from '../../logger.js';
import { GenerationCancelled, ShutdownInterrupted } from '../errors.js';
import type { JobHandler, JobQueue } from './job-queue.js';

/** A FIFO queue run inside this process, at most `concurrency` jobs at a time. */
export class InProcessJobQueue implements JobQueue {
  private readonly waiting: string[] = [];
  private readonly running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private handler: JobHandler | null = null;
  private closing = false;

  constructor(
    private readonly concurrency: number,
    private readonly logger: Logger,
  ) {}

  async enqueue(sessionId: string): Promise<void> {
    if (this.closing) throw new Error('The job queue is shutting down');
    if (this.waiting.includes(sessionId) || this.running.has(sessionId)) return;
    this.waiting.push(sessionId);
    this.drain();
  }

  process(handler: JobHandler): void {
    this.handler = handler;
    this.drain();
  }

  async cancel(sessionId: string): Promise<void> {
    const index = this.waiting.indexOf(sessionId);
    if (index >= 0) this.waiting.splice(index, 1);
    this.running.get(sessionId)?.controller.abort(new GenerationCancelled());
  }

  async close(timeoutMs: number): Promise<void> {
    this.closing = true;
    this.waiting.length = 0;
    const inFlight = [...this.running.values()];
    if (inFlight.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([Promise.all(inFlight.map((job) => job.done)), timedOut]);
    clearTimeout(timer);
    for (const job of this.running.values()) job.controller.abort(new ShutdownInterrupted());
    await Promise.all([...this.running.values()].map((job) => job.done));
  }

  private drain(): void {
    const handler = this.handler;
    if (!handler) return;
    while (!this.closing && this.running.size < this.concurrency && this.waiting.length > 0) {
      const sessionId = this.waiting.shift()!;
      const controller = new AbortController();
      const done = handler(sessionId, controller.signal)
        .catch((error: unknown) => this.logger.error({ err: error, sessionId }, 'generation job crashed'))
        .finally(() => {
          this.running.delete(sessionId);
          this.drain();
        });
      this.running.set(sessionId, { controller, done });
    }
  }
}
