import { describe, expect, it } from 'vitest';
import { GenerationStatus } from '../../src/entities/enums.js';
import { InProcessProgressBus } from '../../src/services/progress/in-process-progress-bus.js';
import type { ProgressEvent, ProgressSubscription } from '../../src/services/progress/progress-bus.js';
import { progressUpdate } from '../support/progress-updates.js';

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** Iterates a subscription in the background; `ended` resolves when the iterator finishes. */
function collect(subscription: ProgressSubscription): { events: ProgressEvent[]; ended: Promise<void> } {
  const events: ProgressEvent[] = [];
  const ended = (async () => {
    for await (const event of subscription) events.push(event);
  })();
  return { events, ended };
}

describe('InProcessProgressBus', () => {
  it('numbers events 1, 2, 3… per session, independently for each session', async () => {
    const bus = new InProcessProgressBus();
    const a = collect(await bus.subscribe('a'));
    const b = collect(await bus.subscribe('b'));
    await bus.publish(progressUpdate('a'));
    await bus.publish(progressUpdate('b'));
    await bus.publish(progressUpdate('a'));
    await bus.publish(progressUpdate('a'));
    await bus.publish(progressUpdate('b'));
    await settle();
    expect(a.events.map((event) => event.seq)).toEqual([1, 2, 3]);
    expect(b.events.map((event) => event.seq)).toEqual([1, 2]);
    await bus.close();
  });

  it("delivers only the subscriber's own session's events, in publish order", async () => {
    const bus = new InProcessProgressBus();
    const a = collect(await bus.subscribe('a'));
    for (let percent = 10; percent <= 15; percent++) {
      await bus.publish(progressUpdate('a', { progressPercentage: percent }));
      await bus.publish(progressUpdate('other', { progressPercentage: 99 }));
    }
    await settle();
    expect(a.events.every((event) => event.sessionId === 'a')).toBe(true);
    expect(a.events.map((event) => event.progressPercentage)).toEqual([10, 11, 12, 13, 14, 15]);
    await bus.close();
  });

  it('buffers events published after subscribe() but before iteration starts', async () => {
    const bus = new InProcessProgressBus();
    await bus.publish(progressUpdate('a', { stage: 'before subscribe' }));
    const subscription = await bus.subscribe('a');
    await bus.publish(progressUpdate('a', { stage: 'one' }));
    await bus.publish(progressUpdate('a', { stage: 'two' }));
    const { events } = collect(subscription);
    await bus.publish(progressUpdate('a', { stage: 'three' }));
    await settle();
    expect(events.map((event) => event.stage)).toEqual(['one', 'two', 'three']);
    expect(events.map((event) => event.seq)).toEqual([2, 3, 4]);
    await bus.close();
  });

  it('delivers every event to every subscriber of the session', async () => {
    const bus = new InProcessProgressBus();
    const first = collect(await bus.subscribe('a'));
    const second = collect(await bus.subscribe('a'));
    await bus.publish(progressUpdate('a', { progressPercentage: 11 }));
    await bus.publish(progressUpdate('a', { progressPercentage: 12 }));
    await settle();
    expect(first.events.map((event) => event.progressPercentage)).toEqual([11, 12]);
    expect(second.events).toEqual(first.events);
    await bus.close();
  });

  it('snapshot() accumulates storyTextSoFar from the deltas and keeps the latest state', async () => {
    const bus = new InProcessProgressBus();
    await bus.publish(progressUpdate('a', { storyTextDelta: 'Once ', progressPercentage: 11 }));
    await bus.publish(progressUpdate('a', { storyTextDelta: null, progressPercentage: 12 }));
    await bus.publish(progressUpdate('a', { storyTextDelta: 'upon a time.', progressPercentage: 13, warnings: ['w1'] }));
    const snapshot = await bus.snapshot('a');
    expect(snapshot).toMatchObject({
      sessionId: 'a',
      seq: 3,
      progressPercentage: 13,
      storyTextSoFar: 'Once upon a time.',
      warnings: ['w1'],
    });
    expect(snapshot).not.toHaveProperty('storyTextDelta');
  });

  it("snapshot() returns a copy: changing it does not change the bus's state", async () => {
    const bus = new InProcessProgressBus();
    await bus.publish(progressUpdate('a', { warnings: ['w1'] }));
    const snapshot = (await bus.snapshot('a'))!;
    snapshot.warnings.push('mutated');
    expect((await bus.snapshot('a'))!.warnings).toEqual(['w1']);
  });

  it('snapshot() is null for a session never published', async () => {
    const bus = new InProcessProgressBus();
    await bus.publish(progressUpdate('a'));
    expect(await bus.snapshot('unknown')).toBeNull();
  });

  it.each([GenerationStatus.COMPLETED, GenerationStatus.FAILED, GenerationStatus.CANCELLED])(
    'snapshot() is null after a %s event, which subscribers still receive',
    async (status) => {
      const bus = new InProcessProgressBus();
      const a = collect(await bus.subscribe('a'));
      await bus.publish(progressUpdate('a', { storyTextDelta: 'text' }));
      expect(await bus.snapshot('a')).not.toBeNull();
      await bus.publish(progressUpdate('a', { status, progressPercentage: 100 }));
      expect(await bus.snapshot('a')).toBeNull();
      await settle();
      expect(a.events.map((event) => event.status)).toEqual([GenerationStatus.GENERATING_STORY, status]);
      expect(a.events[1].seq).toBe(2);
      await bus.close();
    },
  );

  it('close() ends every open iterator and clears the snapshots', async () => {
    const bus = new InProcessProgressBus();
    const a = collect(await bus.subscribe('a'));
    const b = collect(await bus.subscribe('b'));
    await bus.publish(progressUpdate('a'));
    await settle();
    await bus.close();
    await a.ended;
    await b.ended;
    expect(a.events).toHaveLength(1);
    expect(await bus.snapshot('a')).toBeNull();
  });

  it('a closed subscription receives nothing published afterwards, and its iterator ends', async () => {
    const bus = new InProcessProgressBus();
    const subscription = await bus.subscribe('a');
    const { events, ended } = collect(subscription);
    await bus.publish(progressUpdate('a', { stage: 'seen' }));
    await settle();
    subscription.close();
    await bus.publish(progressUpdate('a', { stage: 'after close' }));
    await ended;
    expect(events.map((event) => event.stage)).toEqual(['seen']);
  });

  it('a subscription closed before anyone iterates it yields nothing published afterwards', async () => {
    const bus = new InProcessProgressBus();
    const subscription = await bus.subscribe('a');
    subscription.close();
    await bus.publish(progressUpdate('a'));
    const { events, ended } = collect(subscription);
    await ended;
    expect(events).toEqual([]);
  });

  it('breaking out of a for-await loop unsubscribes, while other subscribers keep receiving', async () => {
    const bus = new InProcessProgressBus();
    const first = await bus.subscribe('a');
    const other = collect(await bus.subscribe('a'));
    await bus.publish(progressUpdate('a', { stage: 'one' }));
    for await (const event of first) {
      expect(event.stage).toBe('one');
      break;
    }
    await bus.publish(progressUpdate('a', { stage: 'two' }));
    const rest = collect(first);
    await rest.ended;
    expect(rest.events).toEqual([]);
    await settle();
    expect(other.events.map((event) => event.stage)).toEqual(['one', 'two']);
    await bus.close();
  });
});
