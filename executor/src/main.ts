import { Broker, JobStore, bootstrap, createRedis, createStorage, jobStoreOptions, redisReady, topologyFor } from '@decisum/shared';
import { loadFastPath } from './engine';
import { Executor, executorOptions } from './executor';
import { createExecutorMetrics, serveMetrics } from './metrics';

async function main(): Promise<void> {
  const { config, logger, onStop } = bootstrap('executor');
  loadFastPath();
  const redis = createRedis(config.redisUrl, logger);
  const store = new JobStore(redis, jobStoreOptions(config));
  const broker = new Broker({ url: config.amqpUrl, topology: topologyFor(config.prefix, config.jobs.maxAttempts), logger });
  const { storage, clients } = createStorage(config);
  const metrics = createExecutorMetrics();
  const metricsServer = config.executor.metricsPort > 0 ? serveMetrics(metrics.registry, config.executor.metricsPort) : undefined;
  metricsServer?.on('error', (err) => logger.warn({ err }, 'executor metrics server failed; metrics are off'));

  const executor = new Executor(
    { store, broker, storage, logger, metrics },
    executorOptions(config),
  );
  await redisReady(redis);
  await executor.start();
  logger.info({ concurrency: config.executor.concurrency, threads: config.executor.threads, prefix: config.prefix }, 'executor ready');

  onStop(async () => {
    await executor.stop(config.shutdownGraceMs);
    await broker.close();
    redis.disconnect();
    metricsServer?.close();
    for (const c of clients) { c.destroy(); }
  });
}

void main();
