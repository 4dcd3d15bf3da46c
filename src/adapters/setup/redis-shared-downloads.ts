import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../../logger.js';
import type { SharedDownloads } from '../../ports/shared-downloads.js';

/** Renews the claim only while this process holds it. KEYS: claim. ARGV: holder, ttl ms. */
const RENEW_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;
/** Deletes the claim only while this process holds it. KEYS: claim. ARGV: holder. */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * Shared downloads on Redis (REDIS_URL), under REDIS_PREFIX: `<prefix>:setup:<component>:claim`
 * (SET NX PX, holding this process's id), `:latest` (the record as JSON, PX) and `:events`
 * (pub/sub). Needs a connection of its own for subscribing, as the progress bus does.
 */
export class RedisSharedDownloads<T> implements SharedDownloads<T> {
  /** This process, as the holder of a claim. */
  private readonly holder = randomUUID();
  private readonly listeners = new Map<string, Set<(record: T) => void>>();
  /** Per channel: resolves once Redis confirmed the subscription, so a second listener does not start before it. */
  private readonly ready = new Map<string, Promise<unknown>>();

  constructor(
    private readonly redis: Redis,
    private readonly subscriberConnection: Redis,
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {
    this.subscriberConnection.on('message', (channel: string, message: string) => {
      const set = this.listeners.get(channel);
      if (!set) return;
      let record: T;
      try {
        record = JSON.parse(message) as T;
      } catch (error) {
        this.logger.warn({ err: error, channel }, 'unreadable set-up download record on Redis');
        return;
      }
      for (const listener of set) listener(record);
    });
  }

  async claim(component: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.keys(component).claim, this.holder, 'PX', ttlMs, 'NX')) === 'OK';
  }

  async publish(component: string, record: T, { keepMs, claimMs }: { keepMs: number; claimMs: number }): Promise<void> {
    const k = this.keys(component);
    const json = JSON.stringify(record);
    await this.redis.multi().set(k.latest, json, 'PX', keepMs).eval(RENEW_SCRIPT, 1, k.claim, this.holder, claimMs).publish(k.events, json).exec();
  }

  async release(component: string): Promise<void> {
    await this.redis.eval(RELEASE_SCRIPT, 1, this.keys(component).claim, this.holder);
  }

  async latest(component: string): Promise<T | null> {
    const json = await this.redis.get(this.keys(component).latest);
    return json ? (JSON.parse(json) as T) : null;
  }

  async subscribe(component: string, listener: (record: T) => void): Promise<() => void> {
    const channel = this.keys(component).events;
    let listening = this.listeners.get(channel);
    if (!listening) {
      listening = new Set();
      this.listeners.set(channel, listening);
      this.ready.set(channel, this.subscriberConnection.subscribe(channel));
    }
    listening.add(listener);
    const set = listening;
    const stop = () => {
      set.delete(listener);
      if (set.size > 0 || this.listeners.get(channel) !== set) return;
      this.listeners.delete(channel);
      this.ready.delete(channel);
      this.subscriberConnection.unsubscribe(channel).catch(() => undefined);
    };
    try {
      await this.ready.get(channel);
    } catch (error) {
      stop();
      throw error;
    }
    return stop;
  }

  private keys(component: string) {
    const base = `${this.prefix}:setup:${component}`;
    return { claim: `${base}:claim`, latest: `${base}:latest`, events: `${base}:events` };
  }
}
