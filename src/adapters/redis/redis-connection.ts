import { Redis } from 'ioredis';
import type { Logger } from '../../logger.js';

/**
 * A Redis connection that retries forever: BullMQ workers require
 * maxRetriesPerRequest null, and a Redis restart should be waited out, not crash us.
 */
export function createRedis(url: string, logger: Logger, role: string): Redis {
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(times * 200, 2000),
    connectionName: `story-agent:${role}`,
  });
  let lastError = '';
  redis.on('error', (error: Error) => {
    // ioredis repeats the same error on every reconnect attempt; say it once.
    if (error.message !== lastError) logger.warn({ role, err: error.message }, 'Redis connection problem');
    lastError = error.message;
  });
  redis.on('ready', () => {
    if (lastError) logger.info({ role }, 'Redis connection restored');
    lastError = '';
  });
  return redis;
}
