import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { GenerationCancelled, ShutdownInterrupted } from '../../src/services/errors.js';
import { InProcessJobQueue } from '../../src/adapters/jobs/in-process-job-queue.js';
import type { JobHandler } from '../../src/ports/job-queue.js';

/** Lets every pending promise callback run (and, under fake timers, nothing else). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/**
 * A handler whose jobs run until the test finishes or fails them. With `honourAbort`
 * (the default) a job ends, rejecting with the abort reason, as soon as its signal aborts.
 */
class Jobs {
  readonly started: string[] = [];
  readonly signals = new Map<string, AbortSignal>();
  running = 0;
  maxRunning = 0;
  private readonly gates = new Map<string, { resolve: () => void; reject: (error: unknown) => void }>();

  constructor(private readonly honourAbort = true) {}

  readonly handler: JobHandler = ({ sessionId, signal }) => {
    this.started.push(sessionId);
    this.signals.set(sessionId, signal);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    return new Promise<void>((resolve, reject) => {
      this.gates.set(sessionId, { resolve, reject });
      if (this.honourAbort) signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    }).finally(() => {
      this.running--;
    });
  };

  async finish(sessionId: string): Promise<void> {
    this.gates.get(sessionId)!.resolve();
    await settle();
  }

  async fail(sessionId: string, error: unknown): Promise<void> {
    this.gates.get(sessionId)!.reject(error);
    await settle();
  }
}

const NO_RETRIES = { attempts: 1, backoffMs: 1000 };

/** A queue of the given concurrency, already taking jobs from a fresh Jobs handler. */
function startQueue(concurrency: number) {
  const jobs = new Jobs();
  const queue = new InProcessJobQueue(NO_RETRIES, silentLogger());
  queue.process(jobs.handler, concurrency);
  return { jobs, queue };
}

function silentLogger() {
  return pino({ level: 'silent' });
}

afterEach(() => {
  vi.useRealTimers();
});

describe('InProcessJobQueue', () => {
  it('runs jobs in FIFO order', async () => {
    const { jobs, queue } = startQueue(1);
    for (const id of ['a', 'b', 'c', 'd']) await queue.enqueue(id);
    expect(jobs.started).toEqual(['a']);
    await jobs.finish('a');
    expect(jobs.started).toEqual(['a', 'b']);
    await jobs.finish('b');
    await jobs.finish('c');
    expect(jobs.started).toEqual(['a', 'b', 'c', 'd']);
  });

  it('holds jobs enqueued before process() until a handler is given, then starts them in order', async () => {
    const jobs = new Jobs();
    const queue = new InProcessJobQueue(NO_RETRIES, silentLogger());
    await queue.enqueue('a');
    await queue.enqueue('b');
    await queue.enqueue('c');
    expect(jobs.started).toEqual([]);
    queue.process(jobs.handler, 2);
    expect(jobs.started).toEqual(['a', 'b']);
  });

  it('never runs more than `concurrency` jobs at once, and starts the next as soon as one ends', async () => {
    const { jobs, queue } = startQueue(2);
    const ids = ['a', 'b', 'c', 'd', 'e', 'f'];
    for (const id of ids) await queue.enqueue(id);
    expect(jobs.running).toBe(2);
    // Finish out of order: the second one first.
    for (const id of ['b', 'a', 'd', 'c', 'f', 'e']) {
      expect(jobs.running).toBeLessThanOrEqual(2);
      await jobs.finish(id);
    }
    expect(jobs.maxRunning).toBe(2);
    expect(jobs.started).toEqual(ids);
    expect(jobs.running).toBe(0);
  });

  it('ignores enqueueing a session that is already queued', async () => {
    const { jobs, queue } = startQueue(1);
    await queue.enqueue('a');
    await queue.enqueue('b');
    await queue.enqueue('b');
    await queue.enqueue('c');
    await jobs.finish('a');
    await jobs.finish('b');
    await jobs.finish('c');
    expect(jobs.started).toEqual(['a', 'b', 'c']);
  });

  it('ignores enqueueing a session that is already running, but runs it again once it has ended', async () => {
    const { jobs, queue } = startQueue(2);
    await queue.enqueue('a');
    await queue.enqueue('a');
    expect(jobs.started).toEqual(['a']);
    await jobs.finish('a');
    expect(jobs.started).toEqual(['a']);
    await queue.enqueue('a');
    expect(jobs.started).toEqual(['a', 'a']);
  });

  it('drops a cancelled queued job: its handler is never called', async () => {
    const { jobs, queue } = startQueue(1);
    await queue.enqueue('a');
    await queue.enqueue('b');
    await queue.enqueue('c');
    await queue.cancel('b');
    await jobs.finish('a');
    await jobs.finish('c');
    expect(jobs.started).toEqual(['a', 'c']);
    expect(jobs.signals.get('a')!.aborted).toBe(false);
  });

  it('aborts a cancelled running job with a GenerationCancelled reason and then moves on', async () => {
    const { jobs, queue } = startQueue(1);
    await queue.enqueue('a');
    await queue.enqueue('b');
    const signal = jobs.signals.get('a')!;
    expect(signal.aborted).toBe(false);
    await queue.cancel('a');
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(GenerationCancelled);
    await settle();
    expect(jobs.started).toEqual(['a', 'b']);
    expect(jobs.signals.get('b')!.aborted).toBe(false);
  });

  it('does nothing when cancelling an unknown session', async () => {
    const { jobs, queue } = startQueue(1);
    await queue.enqueue('a');
    await expect(queue.cancel('nope')).resolves.toBeUndefined();
    expect(jobs.signals.get('a')!.aborted).toBe(false);
  });

  it('keeps going after a handler throws, and logs the crash with the session id', async () => {
    const logger = silentLogger();
    const logged = vi.spyOn(logger, 'error');
    const jobs = new Jobs();
    const queue = new InProcessJobQueue(NO_RETRIES, logger);
    queue.process(jobs.handler, 1);
    await queue.enqueue('a');
    await queue.enqueue('b');
    await jobs.fail('a', new Error('boom'));
    expect(jobs.started).toEqual(['a', 'b']);
    expect(logged).toHaveBeenCalledWith(expect.objectContaining({ sessionId: 'a' }), expect.any(String));
    await jobs.finish('b');
    await queue.enqueue('c');
    expect(jobs.started).toEqual(['a', 'b', 'c']);
  });

  describe('close(timeoutMs)', () => {
    it('resolves at once when nothing is running', async () => {
      const queue = new InProcessJobQueue(NO_RETRIES, silentLogger());
      queue.process(new Jobs().handler, 1);
      await expect(queue.close(10_000)).resolves.toBeUndefined();
    });

    it('waits for running jobs that finish in time, without aborting them', async () => {
      vi.useFakeTimers();
      const { jobs, queue } = startQueue(2);
      await queue.enqueue('a');
      await queue.enqueue('b');
      let closed = false;
      const closing = queue.close(1000).then(() => (closed = true));
      await vi.advanceTimersByTimeAsync(400);
      await jobs.finish('a');
      expect(closed).toBe(false);
      await vi.advanceTimersByTimeAsync(400);
      await jobs.finish('b');
      await closing;
      expect(closed).toBe(true);
      expect(jobs.signals.get('a')!.aborted).toBe(false);
      expect(jobs.signals.get('b')!.aborted).toBe(false);
    });

    it('aborts jobs still running after the timeout with a ShutdownInterrupted reason', async () => {
      vi.useFakeTimers();
      const { jobs, queue } = startQueue(2);
      await queue.enqueue('quick');
      await queue.enqueue('slow');
      let closed = false;
      const closing = queue.close(1000).then(() => (closed = true));
      await jobs.finish('quick');
      await vi.advanceTimersByTimeAsync(999);
      expect(jobs.signals.get('slow')!.aborted).toBe(false);
      expect(closed).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await closing;
      expect(closed).toBe(true);
      const slow = jobs.signals.get('slow')!;
      expect(slow.aborted).toBe(true);
      expect(slow.reason).toBeInstanceOf(ShutdownInterrupted);
      expect(jobs.signals.get('quick')!.aborted).toBe(false);
    });

    it('waits for aborted jobs to wind down before resolving', async () => {
      vi.useFakeTimers();
      const jobs = new Jobs(false); // ignores its signal until told to finish
      const queue = new InProcessJobQueue(NO_RETRIES, silentLogger());
      queue.process(jobs.handler, 1);
      await queue.enqueue('a');
      let closed = false;
      const closing = queue.close(100).then(() => (closed = true));
      await vi.advanceTimersByTimeAsync(100);
      expect(jobs.signals.get('a')!.aborted).toBe(true);
      expect(closed).toBe(false);
      await jobs.finish('a');
      await closing;
      expect(closed).toBe(true);
    });

    it('drops queued jobs: they never start, even after the running ones end', async () => {
      vi.useFakeTimers();
      const { jobs, queue } = startQueue(1);
      await queue.enqueue('a');
      await queue.enqueue('b');
      await queue.enqueue('c');
      const closing = queue.close(1000);
      await jobs.finish('a');
      await closing;
      await vi.advanceTimersByTimeAsync(5000);
      expect(jobs.started).toEqual(['a']);
    });

    it('rejects new enqueues once closing has begun', async () => {
      const { jobs, queue } = startQueue(1);
      await queue.close(1000);
      await expect(queue.enqueue('late')).rejects.toThrow(/shutting down/);
      await settle();
      expect(jobs.started).toEqual([]);
    });
  });
});
