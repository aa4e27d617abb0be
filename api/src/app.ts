import path from 'node:path';
import express, { type Express } from 'express';
import type { Broker, JobStore, Logger, Storage } from '@decisum/shared';
import { createJobsRouter } from './routes/jobs';
import { createFilesRouter } from './routes/files';
import { createDocsRouter } from './openapi';
import { notFound, problemHandler } from './problem';
import type { Metrics } from './metrics';

export interface AppDeps {
  store: JobStore;
  broker: Pick<Broker, 'publish' | 'connected'>;
  storage: Storage;
  logger: Logger;
  metrics?: Metrics;
  /** Extra readiness checks, by name: resolve true when the dependency answers. */
  ready?: Record<string, () => Promise<boolean>>;
}

/** Builds the HTTP app from its dependencies; main.ts opens the connections and listens. */
export function createApp(deps: AppDeps): Express {
  const { logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', true);
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      logger.debug({ method: req.method, url: req.originalUrl, status: res.statusCode, ms }, 'request');
    });
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const checks: Record<string, boolean> = { rabbitmq: deps.broker.connected };
    for (const [name, check] of Object.entries(deps.ready ?? {})) {
      checks[name] = await check().catch(() => false);
    }
    const ok = Object.values(checks).every(Boolean);
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'unavailable', checks });
  });
  if (deps.metrics) {
    const { registry } = deps.metrics;
    app.get('/metrics', async (_req, res) => {
      res.type(registry.contentType).send(await registry.metrics());
    });
  }

  app.use('/api/v1/jobs', express.json({ limit: '64kb' }), createJobsRouter(deps));
  app.use('/api/v1/files', createFilesRouter({ storage: deps.storage, logger }));
  app.use(createDocsRouter());
  app.use(express.static(path.join(__dirname, '..', 'public'), { index: 'index.html' }));

  app.use(notFound);
  app.use(problemHandler(logger));
  return app;
}
