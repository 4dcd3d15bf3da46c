import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { isTerminal } from '../../entities/index.js';
import type { Logger } from '../../logger.js';
import { Subscriber } from './in-process-progress-bus.js';
import type { LiveSnapshot, ProgressBus, ProgressEvent, ProgressSubscription, ProgressUpdate } from '../../ports/progress-bus.js';

/**
 * Numbers the event, keeps the live snapshot and publishes, in one atomic step,
 * so every instance sees the same order and a snapshot never runs ahead of the
 * events it covers.
 * KEYS: seq, epoch, state, text, channel. ARGV: event JSON (no seq/epoch), delta, terminal, fresh epoch, ttl seconds, reset.
 */
const PUBLISH_SCRIPT = `
local seq = redis.call('INCR', KEYS[1])
if seq == 1 then
  redis.call('SET', KEYS[2], ARGV[4])
  -- A new counter (first event, or Redis lost the old one): text left from before is not this epoch's.
  redis.call('DEL', KEYS[4])
end
local epoch = redis.call('GET', KEYS[2])
local event = cjson.decode(ARGV[1])
event['seq'] = seq
event['epoch'] = epoch
if ARGV[6] == '1' then redis.call('DEL', KEYS[4]) end
if ARGV[2] ~= '' then redis.call('APPEND', KEYS[4], ARGV[2]) end
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
else
  event['storyTextDelta'] = cjson.null
  redis.call('SET', KEYS[3], cjson.encode(event))
  redis.call('EXPIRE', KEYS[1], ARGV[5]) redis.call('EXPIRE', KEYS[2], ARGV[5])
  redis.call('EXPIRE', KEYS[3], ARGV[5]) redis.call('EXPIRE', KEYS[4], ARGV[5])
end
if ARGV[2] ~= '' then event['storyTextDelta'] = ARGV[2] else event['storyTextDelta'] = cjson.null end
redis.call('PUBLISH', KEYS[5], cjson.encode(event))
return seq
`;

/** A session's live state outlives a dead runner by this much, then Redis forgets it. */
const SNAPSHOT_TTL_SECONDS = 24 * 60 * 60;

/** Progress over Redis pub/sub, for API instances that serve generations run by other processes. */
export class RedisProgressBus implements ProgressBus {
  private readonly subscribers = new Map<string, Set<Subscriber>>();
  private readonly ready = new Map<string, Promise<unknown>>();

  constructor(
    /** For commands and publishing. */
    private readonly redis: Redis,
    /** A connection of its own: one in subscriber mode can do nothing else. */
    private readonly subscriberConnection: Redis,
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {
    this.subscriberConnection.on('messageBuffer', (channel: Buffer, message: Buffer) => this.deliver(channel.toString(), message.toString()));
    // Whatever was published while the connection was down is lost to its subscribers. Ending
    // their streams makes clients subscribe again and start from the current state, not go on with a gap.
    let connectedBefore = this.subscriberConnection.status === 'ready';
    this.subscriberConnection.on('ready', () => {
      if (connectedBefore) {
        this.logger.warn({ subscribers: this.subscribers.size }, 'progress subscriptions ended after a Redis reconnect');
        void this.close();
      }
      connectedBefore = true;
    });
  }

  async publish(update: ProgressUpdate): Promise<void> {
    const { storyTextDelta, ...rest } = update;
    const k = this.keys(update.sessionId);
    // cjson turns [] into {}; the array is restored on receipt.
    await this.redis.eval(
      PUBLISH_SCRIPT,
      5,
      k.seq,
      k.epoch,
      k.state,
      k.text,
      k.channel,
      JSON.stringify(rest),
      storyTextDelta ?? '',
      isTerminal(update.status) ? '1' : '0',
      randomUUID(),
      String(SNAPSHOT_TTL_SECONDS),
      update.storyTextReset ? '1' : '0',
    );
  }

  async subscribe(sessionId: string): Promise<ProgressSubscription> {
    const channel = this.keys(sessionId).channel;
    const subscriber = new Subscriber((closed) => {
      const set = this.subscribers.get(channel);
      set?.delete(closed);
      if (set?.size === 0) {
        this.subscribers.delete(channel);
        this.ready.delete(channel);
        this.subscriberConnection.unsubscribe(channel).catch(() => undefined);
      }
    });
    const set = this.subscribers.get(channel) ?? new Set();
    set.add(subscriber);
    this.subscribers.set(channel, set);
    if (!this.ready.has(channel)) this.ready.set(channel, this.subscriberConnection.subscribe(channel));
    try {
      await this.ready.get(channel);
    } catch (error) {
      // Let the next subscriber try again rather than inherit this failure.
      this.ready.delete(channel);
      subscriber.close();
      throw error;
    }
    return subscriber;
  }

  async snapshot(sessionId: string): Promise<LiveSnapshot | null> {
    const k = this.keys(sessionId);
    const [state, text] = await this.redis.mget(k.state, k.text);
    if (!state) return null;
    const { storyTextDelta: _delta, storyTextReset: _reset, ...event } = parseEvent(state);
    return { ...event, storyTextSoFar: text ?? '' };
  }

  async close(): Promise<void> {
    for (const set of this.subscribers.values()) for (const subscriber of [...set]) subscriber.close();
  }

  private deliver(channel: string, message: string): void {
    const set = this.subscribers.get(channel);
    if (!set) return;
    try {
      const event = parseEvent(message);
      for (const subscriber of set) subscriber.push(event);
    } catch (error) {
      this.logger.error({ err: error, channel }, 'unreadable progress message');
    }
  }

  private keys(sessionId: string) {
    const base = `${this.prefix}:progress:${sessionId}`;
    return { seq: `${base}:seq`, epoch: `${base}:epoch`, state: `${base}:state`, text: `${base}:text`, channel: `${base}:events` };
  }
}

function parseEvent(json: string): ProgressEvent {
  const event = JSON.parse(json) as ProgressEvent & { warnings: unknown; warningDetails?: unknown };
  return {
    ...event,
    warnings: Array.isArray(event.warnings) ? event.warnings : [],
    warningDetails: Array.isArray(event.warningDetails) ? event.warningDetails : [],
    stageCode: event.stageCode ?? null,
  };
}
