import { Redis } from 'ioredis';
import type { Logger } from './logger';
import { retryDelay } from './retry';

export interface RedisOptions {
  /** Fail commands at once while disconnected (the API answers 503) instead of queueing them. */
  failFast?: boolean;
}

export function createRedis(url: string, logger: Logger, options: RedisOptions = {}): Redis {
  const redis = new Redis(url, {
    maxRetriesPerRequest: options.failFast ? 1 : null,
    enableOfflineQueue: !options.failFast,
    connectTimeout: 5000,
    retryStrategy: (times) => retryDelay(times, { baseMs: 100, maxMs: 5000 }),
  });
  let down = false;
  redis.on('error', (err: Error) => {
    if (!down) { logger.warn({ err }, 'redis error'); }
    down = true;
  });
  redis.on('ready', () => {
    if (down) { logger.info('redis reconnected'); }
    down = false;
  });
  return redis;
}

/** Resolves when the client is ready, or rejects after timeoutMs. */
export async function redisReady(redis: Redis, timeoutMs = 30_000): Promise<void> {
  if (redis.status === 'ready') { return; }
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis not reachable within ${timeoutMs} ms`)), timeoutMs);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
