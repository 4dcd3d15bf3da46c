import { randomUUID } from 'node:crypto';
import { isTerminal } from '../../entities/index.js';
import type { LiveSnapshot, ProgressBus, ProgressEvent, ProgressSubscription, ProgressUpdate } from '../../ports/progress-bus.js';

/** Queue of events for one subscriber; the iterator waits when it is empty. Shared with the Redis bus. */
export class Subscriber implements ProgressSubscription {
  private readonly buffered: ProgressEvent[] = [];
  private wake: (() => void) | null = null;
  private closed = false;

  constructor(private readonly onClose: (subscriber: Subscriber) => void) {}

  push(event: ProgressEvent): void {
    if (this.closed) return;
    this.buffered.push(event);
    this.wake?.();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(this);
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ProgressEvent> {
    try {
      while (true) {
        const next = this.buffered.shift();
        if (next) {
          yield next;
          continue;
        }
        if (this.closed) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
      }
    } finally {
      this.close();
    }
  }
}

export class InProcessProgressBus implements ProgressBus {
  private readonly subscribers = new Map<string, Set<Subscriber>>();
  private readonly live = new Map<string, LiveSnapshot>();
  /** Counters live as long as this object, so one epoch covers them all. */
  private readonly epoch = randomUUID();

  async publish(update: ProgressUpdate): Promise<void> {
    const previous = this.live.get(update.sessionId);
    const event: ProgressEvent = { ...update, epoch: this.epoch, seq: (previous?.seq ?? 0) + 1 };
    const { storyTextDelta, storyTextReset, ...state } = event;
    if (isTerminal(event.status)) {
      this.live.delete(event.sessionId);
    } else {
      this.live.set(event.sessionId, { ...state, storyTextSoFar: (storyTextReset ? '' : (previous?.storyTextSoFar ?? '')) + (storyTextDelta ?? '') });
    }
    for (const subscriber of this.subscribers.get(event.sessionId) ?? []) subscriber.push(event);
  }

  async subscribe(sessionId: string): Promise<ProgressSubscription> {
    const subscriber = new Subscriber((closed) => {
      const set = this.subscribers.get(sessionId);
      set?.delete(closed);
      if (set?.size === 0) this.subscribers.delete(sessionId);
    });
    const set = this.subscribers.get(sessionId) ?? new Set();
    set.add(subscriber);
    this.subscribers.set(sessionId, set);
    return subscriber;
  }

  async snapshot(sessionId: string): Promise<LiveSnapshot | null> {
    const snapshot = this.live.get(sessionId);
    return snapshot ? { ...snapshot, warnings: [...snapshot.warnings], warningDetails: [...snapshot.warningDetails] } : null;
  }

  async close(): Promise<void> {
    for (const set of this.subscribers.values()) for (const subscriber of [...set]) subscriber.close();
    this.live.clear();
  }
}
