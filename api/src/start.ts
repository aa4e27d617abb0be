import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RateLimiter, type Config, type Logger, type Services } from '@decisum/shared';
import { createApp } from './app';
import { createMetrics } from './metrics';
import { OutboxSweeper } from './sweeper';

export interface RunningApi {
  url: string;
  server: Server;
  sweeper: OutboxSweeper;
  /** Stops listening and sweeping; the services stay open. */
  stop(): Promise<void>;
}

/** The API on a process's services: listening on config.port (and host, when given) and sweeping the outbox once this resolves. */
export async function startApi(
  services: Pick<Services, 'store' | 'broker' | 'storage' | 'redis' | 'registry' | 'feed'>,
  config: Config,
  logger: Logger,
  { host }: { host?: string } = {},
): Promise<RunningApi> {
  const { store, broker, storage, redis, registry, feed } = services;
  if (!feed) { throw new Error('the API needs the job event feed: openServices(config, logger, { feed: true })'); }
  const stopping = new AbortController();
  const app = createApp({
    store,
    broker,
    storage,
    logger,
    metrics: createMetrics(store, registry),
    ready: { redis: async () => (await redis.ping()) === 'PONG' },
    feed,
    callbackHosts: config.callbacks.hosts,
    heartbeatMs: config.events.heartbeatMs,
    stopping: stopping.signal,
    dataDir: config.dataDir,
    limits: config.limits,
    rateLimiter: config.limits.ratePerMinute > 0 ? new RateLimiter(redis, config.prefix, config.limits.ratePerMinute) : undefined,
  });
  const server = host === undefined ? app.listen(config.port) : app.listen(config.port, host);
  await once(server, 'listening');
  const sweeper = new OutboxSweeper({ store, broker, logger }, { intervalMs: config.jobs.sweepIntervalMs, graceMs: config.jobs.publishGraceMs });
  sweeper.start();
  const { port } = server.address() as AddressInfo;
  logger.info({ port, dataDir: config.dataDir, prefix: config.prefix }, 'api listening');
  return {
    url: `http://${host ?? '127.0.0.1'}:${port}`,
    server,
    sweeper,
    async stop() {
      // Waiting requests answer and event streams end now, or the server would wait for them to close.
      stopping.abort();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await sweeper.stop();
    },
  };
}
