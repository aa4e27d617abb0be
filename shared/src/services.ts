import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { createResultsArchive, type ResultsArchive } from './archive';
import { Broker, topologyFor } from './broker';
import type { Config } from './config';
import { RedisEpoch, watchEpoch } from './epoch';
import { JobFeed } from './feed';
import { JobStore, jobStoreOptions } from './jobStore';
import type { Logger } from './logger';
import { createRegistry } from './metrics';
import { createRedis, redisReady, warnIfRedisForgets } from './redis';
import { createStorage, type Storage } from './storage';

export interface ServicesOptions {
  /** Redis commands fail at once while it is down (the API answers 503) instead of waiting for it (executors). */
  failFast?: boolean;
  /** Open the job event feed (the API's): a Redis connection of its own for a blocking read. */
  feed?: boolean;
}

/** The clients one process works with, opened from its config. */
export interface Services {
  redis: Redis;
  store: JobStore;
  /** Connecting, and reconnecting, in the background; `await broker.start()` to wait for it. */
  broker: Broker;
  storage: Storage;
  /** Default Node.js metrics; each process adds its own. */
  registry: Registry;
  /** The Redis epoch, checked at every (re)connection: a change is logged, counted and shown on /readyz. */
  epoch: RedisEpoch;
  /** The results archive (RESULTS_LOCATION). */
  archive: ResultsArchive;
  /** Present when opened with `feed: true`. */
  feed?: JobFeed;
  /** Closes everything opened here: the broker first (closing its channels waits for the last acks), the feed, then Redis, then the S3 clients. */
  close(): Promise<void>;
}

/** The composition root's one call: every connection a process needs, and how to close them. Nothing else opens one. */
export async function openServices(config: Config, logger: Logger, options: ServicesOptions = {}): Promise<Services> {
  const redis = createRedis(config, logger, { failFast: options.failFast });
  try {
    await redisReady(redis);
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  void warnIfRedisForgets(redis, logger);
  let feed: JobFeed | undefined;
  if (options.feed) {
    feed = new JobFeed(createRedis(config, logger), config.prefix, logger);
    try {
      await feed.start();
    } catch (err) {
      redis.disconnect();
      await feed.close();
      throw err;
    }
  }
  const broker = new Broker({ urls: config.amqpUrls, topology: topologyFor(config.prefix, config.jobs.maxAttempts), logger });
  void broker.start();
  const { storage, clients } = createStorage(config);
  const registry = createRegistry();
  const epoch = new RedisEpoch(redis, config.prefix);
  const unwatch = watchEpoch(epoch, logger, registry);
  return {
    redis,
    store: new JobStore(redis, jobStoreOptions(config)),
    broker,
    storage,
    registry,
    epoch,
    archive: createResultsArchive(config, storage),
    feed,
    async close() {
      unwatch();
      await broker.close();
      await feed?.close();
      redis.disconnect();
      for (const client of clients) { client.destroy(); }
    },
  };
}
