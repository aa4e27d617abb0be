import { Redis, type RedisOptions as IORedisOptions } from 'ioredis';
import type { Config } from './config';
import type { Logger } from './logger';
import { retryDelay } from './retry';

export interface RedisOptions {
  /** Fail commands at once while disconnected (the API answers 503) instead of queueing them. */
  failFast?: boolean;
}

/** What a client connects to: REDIS_URL, and in Sentinel mode the sentinels that name the master. */
export type RedisTarget = Pick<Config, 'redisUrl' | 'redisSentinel'>;

/**
 * A client of the job store's Redis. Given the config (not a bare URL) it follows a Sentinel-managed
 * master through failover: it asks the sentinels for the master at every (re)connection, checks the
 * server it reached is a master, drops the connection when a sentinel announces a switch, and when
 * an old master answers READONLY.
 */
export function createRedis(target: string | RedisTarget, logger: Logger, options: RedisOptions = {}): Redis {
  const { redisUrl, redisSentinel } = typeof target === 'string' ? { redisUrl: target, redisSentinel: undefined } : target;
  const common: IORedisOptions = {
    maxRetriesPerRequest: options.failFast ? 1 : null,
    enableOfflineQueue: !options.failFast,
    connectTimeout: 5000,
    // Commands issued in one tick go out in one write: many jobs at once share the system calls.
    enableAutoPipelining: true,
    retryStrategy: (times) => retryDelay(times, { baseMs: 100, maxMs: 5000 }),
    // A demoted master refuses writes: reconnect (through the sentinels) and fail this command, which callers retry.
    reconnectOnError: (err) => /^(READONLY|MASTERDOWN)\b/.test(err.message),
  };
  const redis = redisSentinel
    ? new Redis(redisUrl, {
        ...common,
        name: redisSentinel.name,
        sentinels: redisSentinel.sentinels,
        role: 'master',
        failoverDetector: true,
        sentinelRetryStrategy: (times) => retryDelay(times, { baseMs: 100, maxMs: 2000 }),
      })
    : new Redis(redisUrl, common);
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

const UNAVAILABLE =
  /Connection is closed|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|MaxRetriesPerRequest|Stream isn't writeable|All sentinels are unreachable|^(READONLY|LOADING|MASTERDOWN|NOREPLICAS|TRYAGAIN)\b/;

/** Whether err means Redis cannot be reached or cannot take writes right now (a restart, a failover): retry later. */
export function isRedisUnavailable(err: unknown): boolean {
  const e = err as { name?: string; message?: string } | undefined;
  return e?.name === 'MaxRetriesPerRequestError' || UNAVAILABLE.test(e?.message ?? '');
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

/** What a Redis server keeps on disk, as CONFIG GET tells it. */
export interface RedisPersistence {
  /** The append-only file is on. */
  aof: boolean;
  /** Its fsync policy: always, everysec or no. */
  appendfsync: string;
  /** The RDB snapshot rules (`save`); empty when snapshots are off. */
  save: string;
}

/** Undefined when CONFIG is disabled or not permitted (managed services often rename it). */
export async function redisPersistence(redis: Redis): Promise<RedisPersistence | undefined> {
  const get = async (name: string) => ((await redis.config('GET', name)) as string[])[1] ?? '';
  try {
    const [appendonly, appendfsync, save] = await Promise.all([get('appendonly'), get('appendfsync'), get('save')]);
    return { aof: appendonly === 'yes', appendfsync, save: save.trim() };
  } catch (err) {
    if (/unknown command|NOPERM|no permission/i.test((err as Error).message)) { return undefined; }
    throw err;
  }
}

/** The warning an operator should read about what a Redis restart loses, or undefined when it loses nothing. */
export function persistenceWarning(p: RedisPersistence): string | undefined {
  if (p.aof && p.appendfsync === 'always') { return undefined; }
  if (p.aof) {
    return `redis fsyncs its append-only file ${p.appendfsync === 'no' ? 'when the OS decides' : 'once a second'}: a crash loses the job changes of that last moment`;
  }
  if (p.save !== '') {
    return `redis keeps only snapshots (save "${p.save}"): a restart loses every job change since the last one`;
  }
  return 'redis keeps nothing on disk: a restart forgets every job record (queued, running and finished)';
}

/**
 * Logs at start-up what a restart of this Redis would lose: a warning when it keeps nothing on disk or
 * only snapshots, a note when its AOF is not fsynced on every write. Never throws.
 */
export async function warnIfRedisForgets(redis: Redis, logger: Logger): Promise<RedisPersistence | undefined> {
  try {
    const p = await redisPersistence(redis);
    if (!p) {
      logger.info('cannot tell whether redis keeps its data on disk: CONFIG GET is not allowed');
      return undefined;
    }
    const warning = persistenceWarning(p);
    if (warning === undefined) { return p; }
    const fields = { appendonly: p.aof ? 'yes' : 'no', appendfsync: p.appendfsync, save: p.save };
    if (p.aof) { logger.info(fields, warning); }
    else { logger.warn(fields, `${warning}; turn on appendonly (appendfsync always)`); }
    return p;
  } catch (err) {
    logger.info({ err }, 'cannot tell whether redis keeps its data on disk');
    return undefined;
  }
}
