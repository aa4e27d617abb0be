import type http from 'node:http';
import type { Config, Logger, Services } from '@decisum/shared';
import { CallbackDispatcher, callbackOptions } from './callbacks';
import { loadFastPath } from './engine';
import { Executor, executorOptions } from './executor';
import { createExecutorMetrics, serveMetrics } from './metrics';

export interface RunningExecutor {
  executor: Executor;
  callbacks: CallbackDispatcher;
  /** Stops taking jobs, lets running ones finish for graceMs, hands the rest back; the services stay open. */
  stop(graceMs: number): Promise<void>;
}

/**
 * The executor on a process's services: its metrics (and their endpoint, unless the port is 0), consuming once this resolves.
 * workerEntry is the built worker module, for a process that runs the TypeScript sources (tests).
 */
export async function startExecutor(
  services: Pick<Services, 'redis' | 'store' | 'broker' | 'storage' | 'registry' | 'archive' | 'epoch'>,
  config: Config,
  logger: Logger,
  { workerEntry }: { workerEntry?: string } = {},
): Promise<RunningExecutor> {
  loadFastPath();
  let stopping = false;
  // Ready while it can take jobs: what /readyz (the container's health check) and decisum_executor_ready report.
  const checks = () => ({ redis: services.redis.status === 'ready', rabbitmq: services.broker.connected, accepting: !stopping });
  const metrics = createExecutorMetrics(services.registry, checks);
  let metricsServer: http.Server | undefined;
  if (config.executor.metricsPort > 0) {
    metricsServer = serveMetrics(services.registry, config.executor.metricsPort, { checks, epoch: () => services.epoch.report() });
    metricsServer.on('error', (err) => logger.warn({ err }, 'executor metrics server failed; metrics are off'));
  }
  const { store, broker, storage, archive } = services;
  const executor = new Executor({ store, broker, storage, archive, logger, metrics }, { ...executorOptions(config), workerEntry });
  // Callbacks of jobs finished anywhere (here, by another executor that died since, or cancelled through the API).
  const callbacks = new CallbackDispatcher({ store, logger }, callbackOptions(config));
  await executor.start();
  callbacks.start();
  logger.info({ concurrency: config.executor.concurrency, prefetch: config.executor.prefetch, threads: config.executor.threads, prefix: config.prefix }, 'executor ready');
  return {
    executor,
    callbacks,
    async stop(graceMs) {
      stopping = true;
      await executor.stop(graceMs);
      await callbacks.stop();
      metricsServer?.close();
    },
  };
}
