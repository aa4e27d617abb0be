import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { Broker, topologyFor } from './broker';
import type { Config } from './config';
import { JobStore, jobStoreOptions } from './jobStore';
import type { Logger } from './logger';
import { createRegistry } from './metrics';
import { createRedis, redisReady, warnIfRedisForgets } from './redis';
import { createStorage, type LocalStorage, type Storage } from './storage';

export interface ServicesOptions {
  /** Redis commands fail at once while it is down (the API answers 503) instead of waiting for it (executors). */
  failFast?: boolean;
}

/** The clients one process works with, opened from its config. */
export interface Services {
  redis: Redis;
  store: JobStore;
  /** Connecting, and reconnecting, in the background; `await broker.start()` to wait for it. */
  broker: Broker;
  storage: Storage;
  local: LocalStorage;
  /** Default Node.js metrics; each process adds its own. */
  registry: Registry;
  /** Closes everything opened here: the broker first (closing its channels waits for the last acks), then Redis, then the S3 clients. */
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
  const broker = new Broker({ urls: config.amqpUrls, topology: topologyFor(config.prefix, config.jobs.maxAttempts), logger });
  void broker.start();
  const { storage, local, clients } = createStorage(config);
  return {
    redis,
    store: new JobStore(redis, jobStoreOptions(config)),
    broker,
    storage,
    local,
    registry: createRegistry(),
    async close() {
      await broker.close();
      redis.disconnect();
      for (const client of clients) { client.destroy(); }
    },
  };
}
