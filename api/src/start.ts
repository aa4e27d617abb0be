import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, exposureProblem, RateLimiter, serveMetrics, type Config, type Logger, type Services } from '@decisum/shared';
import { createApp } from './app';
import { createMetrics } from './metrics';
import { OutboxSweeper } from './sweeper';

export interface RunningApi {
  url: string;
  server: Server;
  /** The /metrics endpoint's base URL on METRICS_PORT; absent when that port is 0. */
  metricsUrl?: string;
  sweeper: OutboxSweeper;
  /** Stops listening and sweeping; the services stay open. */
  stop(): Promise<void>;
}

/**
 * Timeouts set on purpose. Headers must arrive within 30 s (slowloris); a body has no total limit, so
 * a long upload that keeps moving is never cut, but a socket idle for 2 min is; an idle keep-alive
 * connection is kept 65 s, longer than load balancers' usual 60 s, so they never reuse one just closed.
 */
export const SERVER_TIMEOUTS = { headersTimeoutMs: 30_000, idleSocketMs: 120_000, keepAliveMs: 65_000 } as const;

function setTimeouts(server: Server): void {
  server.headersTimeout = SERVER_TIMEOUTS.headersTimeoutMs;
  server.requestTimeout = 0;
  server.keepAliveTimeout = SERVER_TIMEOUTS.keepAliveMs;
  server.setTimeout(SERVER_TIMEOUTS.idleSocketMs, (socket) => socket.destroy());
}

/** Stops listening; idle keep-alive connections close now, requests still running get graceMs to finish. */
async function closeServer(server: Server, graceMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const cut = setTimeout(() => server.closeAllConnections(), graceMs);
  await closed;
  clearTimeout(cut);
}

/** The API's /metrics, /healthz and /readyz on METRICS_PORT, apart from the public port; undefined when it is 0. */
async function startMetrics(services: Pick<Services, 'registry'>, config: Config, host: string, logger: Logger): Promise<Server | undefined> {
  if (config.metricsPort === 0) { return undefined; }
  const server = serveMetrics(services.registry, config.metricsPort, { host });
  server.on('error', (err) => logger.warn({ err, port: config.metricsPort }, 'api metrics server failed; metrics are off'));
  // A port in use turns metrics off (logged), not the API.
  await new Promise<void>((resolve) => {
    server.once('listening', resolve);
    server.once('error', () => resolve());
  });
  return server.listening ? server : undefined;
}

/**
 * The API on a process's services: listening on HOST:PORT (host overridable), /metrics on
 * METRICS_PORT, and sweeping the outbox once this resolves. Without tokens it refuses to listen beyond loopback.
 */
export async function startApi(
  services: Pick<Services, 'store' | 'broker' | 'storage' | 'redis' | 'registry' | 'feed' | 'epoch' | 'archive'>,
  config: Config,
  logger: Logger,
  options: { host?: string } = {},
): Promise<RunningApi> {
  const { store, broker, storage, redis, registry, feed, epoch, archive } = services;
  if (!feed) { throw new Error('the API needs the job event feed: openServices(config, logger, { feed: true })'); }
  const host = options.host ?? config.host;
  const exposure = exposureProblem({ host, tokens: config.tokens });
  if (exposure) { throw new ConfigError(exposure); }
  const stopping = new AbortController();
  const app = createApp({
    store,
    broker,
    storage,
    logger,
    metrics: createMetrics(store, registry),
    ready: { redis: async () => (await redis.ping()) === 'PONG' },
    feed,
    archive,
    epoch: () => epoch.report(),
    callbackHosts: config.callbacks.hosts,
    heartbeatMs: config.events.heartbeatMs,
    stopping: stopping.signal,
    tokens: config.tokens,
    trustProxy: config.trustProxy,
    dataDir: config.dataDir,
    limits: config.limits,
    rateLimiter: config.limits.ratePerMinute > 0 ? new RateLimiter(redis, config.prefix, config.limits.ratePerMinute) : undefined,
  });
  const server = app.listen(config.port, host);
  setTimeouts(server);
  await once(server, 'listening');
  const metricsServer = await startMetrics(services, config, host, logger);
  const sweeper = new OutboxSweeper({ store, broker, logger }, { intervalMs: config.jobs.sweepIntervalMs, graceMs: config.jobs.publishGraceMs });
  sweeper.start();
  const { port } = server.address() as AddressInfo;
  const metricsPort = metricsServer && (metricsServer.address() as AddressInfo).port;
  const mode = config.tokens.length === 0 ? 'protected' : 'tokens';
  logger.info({ host, port, metricsPort, mode, dataDir: config.dataDir, prefix: config.prefix }, 'api listening');
  if (mode === 'protected') {
    logger.info('protected mode: no API_TOKENS configured, so only clients on this machine (Host localhost, 127.0.0.1 or [::1]) are answered');
  }
  const base = (p: number) => `http://${host.includes(':') ? `[${host}]` : host}:${p}`;
  return {
    url: base(port),
    metricsUrl: metricsPort === undefined ? undefined : base(metricsPort),
    server,
    sweeper,
    async stop() {
      // Waiting requests answer and event streams end now, or the server would wait for them to close.
      stopping.abort();
      metricsServer?.close();
      await closeServer(server, config.shutdownGraceMs);
      await sweeper.stop();
    },
  };
}
