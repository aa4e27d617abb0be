import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Broker, JobStore, bootstrap, createRedis, createStorage, jobStoreOptions, redisReady, topologyFor } from '@decisum/shared';
import { createApp } from './app';
import { createMetrics } from './metrics';
import { OutboxSweeper } from './sweeper';

async function main(): Promise<void> {
  const { config, logger, onStop } = bootstrap('api');
  const redis = createRedis(config.redisUrl, logger, { failFast: true });
  const store = new JobStore(redis, jobStoreOptions(config));
  const broker = new Broker({ url: config.amqpUrl, topology: topologyFor(config.prefix, config.jobs.maxAttempts), logger });
  const { storage, clients } = createStorage(config);
  const metrics = createMetrics(store);
  const sweeper = new OutboxSweeper(
    { store, broker, logger },
    { intervalMs: config.jobs.sweepIntervalMs, graceMs: config.jobs.publishGraceMs },
  );

  await redisReady(redis);
  // The API serves (and answers 503 for submissions) while the broker is still coming up.
  void broker.start();
  const app = createApp({
    store,
    broker,
    storage,
    logger,
    metrics,
    ready: { redis: async () => (await redis.ping()) === 'PONG' },
  });
  const server = app.listen(config.port);
  await once(server, 'listening');
  sweeper.start();
  logger.info({ port: (server.address() as AddressInfo).port, dataDir: config.dataDir, prefix: config.prefix }, 'api listening');

  onStop(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await sweeper.stop();
    await broker.close();
    redis.disconnect();
    for (const c of clients) { c.destroy(); }
  });
}

void main();
