import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { GenerationStatus } from '../../src/entities/enums.js';
import { GenerationCancelled } from '../../src/services/errors.js';
import { BullMqJobQueue } from '../../src/services/jobs/bullmq-job-queue.js';
import { InProcessJobQueue } from '../../src/services/jobs/in-process-job-queue.js';
import { RetryLater, type Job, type JobQueue, type RetryPolicy } from '../../src/services/jobs/job-queue.js';
import { InProcessProgressBus } from '../../src/services/progress/in-process-progress-bus.js';
import type { ProgressBus, ProgressEvent } from '../../src/services/progress/progress-bus.js';
import { RedisProgressBus } from '../../src/services/progress/redis-progress-bus.js';
import { createRedis } from '../../src/services/redis/redis-connection.js';
import { progressUpdate } from '../support/progress-updates.js';
import { createRedisNamespace } from '../support/redis.js';

/**
 * The same behaviour, proved for both backbones: in one process, and on Redis
 * across two instances (A publishes or enqueues, B subscribes or runs).
 */
const logger = pino({ level: 'silent' });
const retry: RetryPolicy = { attempts: 2, backoffMs: 20 };
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Pair<T> {
  a: T;
  b: T;
}

const backbones = {
  'in-process': {
    bus(): Pair<ProgressBus> {
      const bus = new InProcessProgressBus();
      cleanups.push(() => bus.close());
      return { a: bus, b: bus };
    },
    queue(): Pair<JobQueue> {
      const queue = new InProcessJobQueue(retry, logger);
      cleanups.push(() => queue.close(0));
      return { a: queue, b: queue };
    },
  },
  redis: {
    bus(): Pair<ProgressBus> {
      const namespace = createRedisNamespace();
      const make = () => {
        const commands = createRedis(namespace.url, logger, 'test');
        const subscriber = createRedis(namespace.url, logger, 'test-sub');
        const bus = new RedisProgressBus(commands, subscriber, namespace.prefix, logger);
        cleanups.push(async () => {
          await bus.close();
          commands.disconnect();
          subscriber.disconnect();
        });
        return bus;
      };
      cleanups.push(() => namespace.cleanup());
      return { a: make(), b: make() };
    },
    queue(): Pair<JobQueue> {
      const namespace = createRedisNamespace();
      cleanups.push(() => namespace.cleanup());
      const make = () => {
        const commands = createRedis(namespace.url, logger, 'test');
        const queue = new BullMqJobQueue(
          commands,
          () => createRedis(namespace.url, logger, 'test-cancel-listener'),
          { prefix: namespace.prefix, retry, lockDurationMs: 2000, stalledIntervalMs: 1000, maxStalledCount: 3 },
          logger,
        );
        cleanups.push(async () => {
          await queue.close(0);
          commands.disconnect();
        });
        return queue;
      };
      return { a: make(), b: make() };
    },
  },
};

async function take(iterable: AsyncIterable<ProgressEvent>, count: number): Promise<ProgressEvent[]> {
  const events: ProgressEvent[] = [];
  for await (const event of iterable) {
    events.push(event);
    if (events.length === count) break;
  }
  return events;
}

describe.each(Object.entries(backbones))('the %s backbone', (_name, backbone) => {
  describe('progress bus', () => {
    it('delivers events published on one instance to subscribers on another, numbered 1, 2, 3 in order', async () => {
      const { a, b } = backbone.bus();
      const session = randomUUID();
      const subscription = await b.subscribe(session);
      const received = take(subscription, 3);
      await a.publish(progressUpdate(session, { progressPercentage: 10 }));
      await a.publish(progressUpdate(session, { progressPercentage: 11, storyTextDelta: 'Once ' }));
      await a.publish(progressUpdate(session, { progressPercentage: 12, warnings: ['careful'] }));
      const events = await received;
      expect(events.map((event) => [event.seq, event.progressPercentage, event.storyTextDelta])).toEqual([
        [1, 10, null],
        [2, 11, 'Once '],
        [3, 12, null],
      ]);
      expect(events[0].warnings).toEqual([]);
      expect(events[2].warnings).toEqual(['careful']);
      expect(new Set(events.map((event) => event.epoch)).size).toBe(1);
    });

    it('keeps a snapshot of the latest state with all story text so far, readable from any instance, until a terminal event', async () => {
      const { a, b } = backbone.bus();
      const session = randomUUID();
      expect(await b.snapshot(session)).toBeNull();
      await a.publish(progressUpdate(session, { storyTextDelta: 'Once upon ' }));
      await a.publish(progressUpdate(session, { storyTextDelta: 'a time.', progressPercentage: 20 }));
      expect(await b.snapshot(session)).toMatchObject({ seq: 2, progressPercentage: 20, storyTextSoFar: 'Once upon a time.', warnings: [] });
      await a.publish(progressUpdate(session, { status: GenerationStatus.COMPLETED, progressPercentage: 100 }));
      expect(await b.snapshot(session)).toBeNull();
    });

    it("gives a subscriber only its own session's events", async () => {
      const { a, b } = backbone.bus();
      const [mine, other] = [randomUUID(), randomUUID()];
      const subscription = await b.subscribe(mine);
      const received = take(subscription, 2);
      await a.publish(progressUpdate(other));
      await a.publish(progressUpdate(mine, { progressPercentage: 15 }));
      await a.publish(progressUpdate(other));
      await a.publish(progressUpdate(mine, { progressPercentage: 16 }));
      expect((await received).map((event) => [event.sessionId, event.progressPercentage])).toEqual([
        [mine, 15],
        [mine, 16],
      ]);
    });

    it('starts the snapshot text over when an event says the story text was reset', async () => {
      const { a, b } = backbone.bus();
      const session = randomUUID();
      await a.publish(progressUpdate(session, { storyTextDelta: 'A first try that ' }));
      await a.publish(progressUpdate(session, { storyTextDelta: 'Once', storyTextReset: true }));
      await a.publish(progressUpdate(session, { storyTextDelta: ' upon a time.' }));
      expect((await b.snapshot(session))!.storyTextSoFar).toBe('Once upon a time.');
    });
  });

  describe('job queue', () => {
    function recorder() {
      const runs: Job[] = [];
      let release: () => void = () => {};
      const gate = new Promise<void>((resolve) => (release = resolve));
      return { runs, gate, release: () => release() };
    }

    it('runs a session enqueued twice only once', async () => {
      const { a, b } = backbone.queue();
      const session = randomUUID();
      const { runs } = recorder();
      await a.enqueue(session);
      await a.enqueue(session);
      let done!: () => void;
      const finished = new Promise<void>((resolve) => (done = resolve));
      b.process(async (job) => {
        runs.push(job);
        done();
      }, 2);
      await finished;
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(runs.map((job) => job.sessionId)).toEqual([session]);
    });

    it('aborts a running job with GenerationCancelled when any instance cancels it', async () => {
      const { a, b } = backbone.queue();
      const session = randomUUID();
      let started!: () => void;
      const running = new Promise<void>((resolve) => (started = resolve));
      const aborted = new Promise<unknown>((resolve) => {
        b.process(async ({ signal }) => {
          started();
          await new Promise<void>((stop) => signal.addEventListener('abort', () => stop(), { once: true }));
          resolve(signal.reason);
        }, 1);
      });
      await a.enqueue(session);
      await running;
      expect(b.activeSessions().has(session)).toBe(true);
      await a.cancel(session);
      expect(await aborted).toBeInstanceOf(GenerationCancelled);
    });

    it('drops a queued job that is cancelled before it starts', async () => {
      const { a, b } = backbone.queue();
      const [blocker, cancelled, after] = [randomUUID(), randomUUID(), randomUUID()];
      const started: string[] = [];
      let releaseBlocker!: () => void;
      const blocking = new Promise<void>((resolve) => (releaseBlocker = resolve));
      let afterDone!: () => void;
      const afterRan = new Promise<void>((resolve) => (afterDone = resolve));
      await a.enqueue(blocker);
      await a.enqueue(cancelled);
      await a.enqueue(after);
      await a.cancel(cancelled);
      b.process(async ({ sessionId }) => {
        started.push(sessionId);
        if (sessionId === blocker) await blocking;
        if (sessionId === after) afterDone();
      }, 1);
      releaseBlocker();
      await afterRan;
      expect(started).toEqual([blocker, after]);
    });

    it('runs a job again, as attempt 2, when its handler asks to retry later', async () => {
      const { a, b } = backbone.queue();
      const session = randomUUID();
      const attempts: number[] = [];
      let secondRun!: () => void;
      const done = new Promise<void>((resolve) => (secondRun = resolve));
      b.process(async ({ attempt, maxAttempts }) => {
        attempts.push(attempt);
        expect(maxAttempts).toBe(2);
        if (attempt === 1) throw new RetryLater('Ollama is not reachable');
        secondRun();
      }, 1);
      await a.enqueue(session);
      await done;
      expect(attempts).toEqual([1, 2]);
    });
  });
});
