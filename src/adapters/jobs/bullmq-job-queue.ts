import { Queue, WaitingError, Worker, type Job as BullJob } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../../logger.js';
import { GenerationCancelled, ShutdownInterrupted } from '../../services/errors.js';
import type { JobHandler, JobQueue, RetryPolicy } from '../../ports/job-queue.js';

const QUEUE_NAME = 'generations';

interface GenerationJobData {
  sessionId: string;
}

export interface BullMqSettings {
  prefix: string;
  retry: RetryPolicy;
  /** How long a job's lock lasts without renewal: a killed worker's job is picked up after this. */
  lockDurationMs: number;
  stalledIntervalMs: number;
  /** Stalls (worker deaths) a job survives before BullMQ gives up on it; sessions bound their runs themselves. */
  maxStalledCount: number;
}

/**
 * Generation jobs on BullMQ. The job id is the session id, so a session is never
 * queued twice. Cancels travel over a Redis channel, since the job may run in
 * any worker process.
 */
export class BullMqJobQueue implements JobQueue {
  private readonly queue: Queue<GenerationJobData>;
  private worker: Worker<GenerationJobData> | null = null;
  private cancelListener: Redis | null = null;
  private readonly controllers = new Map<string, AbortController>();
  private readonly cancelChannel: string;

  constructor(
    private readonly redis: Redis,
    /** Opens a connection for listening to cancels; only a process that runs jobs needs one. */
    private readonly openCancelListener: () => Redis,
    private readonly settings: BullMqSettings,
    private readonly logger: Logger,
  ) {
    this.queue = new Queue<GenerationJobData>(QUEUE_NAME, { connection: redis, prefix: settings.prefix });
    this.queue.on('error', (error) => logger.warn({ err: error.message }, 'job queue error'));
    this.cancelChannel = `${settings.prefix}:cancel`;
  }

  async enqueue(sessionId: string): Promise<void> {
    await this.queue.add(
      'generate',
      { sessionId },
      {
        jobId: sessionId,
        attempts: this.settings.retry.attempts,
        backoff: { type: 'exponential', delay: this.settings.retry.backoffMs },
        // The session row is the record; a finished job only needs to be gone so the session can be resumed if ever needed.
        removeOnComplete: true,
        removeOnFail: true,
      },
    );
  }

  process(handler: JobHandler, concurrency: number): void {
    const listener = this.openCancelListener();
    this.cancelListener = listener;
    listener.on('message', (channel: string, sessionId: string) => {
      if (channel === this.cancelChannel) this.controllers.get(sessionId)?.abort(new GenerationCancelled());
    });
    listener.subscribe(this.cancelChannel).catch((error: unknown) => {
      // Cancels still reach the session row, which the run checks at every stage.
      this.logger.warn({ err: error }, 'could not listen for cancels');
    });

    this.worker = new Worker<GenerationJobData>(QUEUE_NAME, (job, token) => this.run(job, token, handler), {
      connection: this.redis,
      prefix: this.settings.prefix,
      concurrency,
      lockDuration: this.settings.lockDurationMs,
      stalledInterval: this.settings.stalledIntervalMs,
      maxStalledCount: this.settings.maxStalledCount,
    });
    this.worker.on('error', (error) => this.logger.warn({ err: error.message }, 'job worker error'));
  }

  async cancel(sessionId: string): Promise<void> {
    const job = await this.queue.getJob(sessionId);
    const state = await job?.getState();
    if (job && (state === 'waiting' || state === 'delayed' || state === 'prioritized')) {
      await job.remove().catch(() => undefined);
    }
    await this.redis.publish(this.cancelChannel, sessionId);
  }

  activeSessions(): ReadonlySet<string> {
    return new Set(this.controllers.keys());
  }

  async close(timeoutMs: number): Promise<void> {
    if (this.worker) {
      const closing = this.worker.close();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
      if ((await Promise.race([closing, timedOut])) === 'timeout') {
        for (const controller of this.controllers.values()) controller.abort(new ShutdownInterrupted());
      }
      clearTimeout(timer);
      await closing;
    }
    await this.queue.close();
    await this.cancelListener?.quit().catch(() => this.cancelListener?.disconnect());
  }

  private async run(job: BullJob<GenerationJobData>, token: string | undefined, handler: JobHandler): Promise<void> {
    const { sessionId } = job.data;
    const controller = new AbortController();
    this.controllers.set(sessionId, controller);
    try {
      await handler({ sessionId, attempt: job.attemptsMade + 1, maxAttempts: this.settings.retry.attempts, signal: controller.signal });
    } finally {
      this.controllers.delete(sessionId);
    }
    if (controller.signal.reason instanceof ShutdownInterrupted) {
      // Hand the job straight back so another worker takes it now, not after the lock expires.
      await job.moveToWait(token);
      throw new WaitingError();
    }
  }
}
