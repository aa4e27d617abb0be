import path from 'node:path';
import express, { type Express } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import { DEFAULT_LIMITS, type Broker, type CallbackHosts, type EpochReport, type JobFeed, type JobStore, type Limits, type Logger, type RateLimiter, type ResultsArchive, type Storage, type TokenEntry, type TrustProxy } from '@decisum/shared';
import { authenticate, guardLocal, requireAccess } from './auth';
import { rateLimit } from './rateLimit';
import { createEventsRouter } from './routes/events';
import { createJobsRouter } from './routes/jobs';
import { createFilesRouter } from './routes/files';
import { createOperationsRouter } from './routes/operations';
import { ApiDocs, createDocsRouter, type OpenApiDocument } from './openapi';
import { notFound, problemHandler } from './problem';
import { timeRequests, type Metrics } from './metrics';

export interface AppDeps {
  store: JobStore;
  broker: Pick<Broker, 'publish' | 'connected'>;
  storage: Storage;
  logger: Logger;
  metrics?: Metrics;
  /** Extra readiness checks, by name: resolve true when the dependency answers. */
  ready?: Record<string, () => Promise<boolean>>;
  /** Where finished jobs are kept past Redis: GET /api/v1/jobs/{id} reads it when Redis has no record. */
  archive?: ResultsArchive;
  /** What this process knows of the Redis epoch, for /readyz. */
  epoch?: () => EpochReport;
  /** This process's reader of job events: `?wait` and the event stream listen to it. */
  feed: JobFeed;
  /** Where callbacks may go (CALLBACK_HOSTS); none when absent. */
  callbackHosts?: CallbackHosts;
  /** How often an idle event stream gets a comment (SSE_HEARTBEAT_MS). */
  heartbeatMs?: number;
  /** DATA_DIR, absolute: uploads check its disk's free space. */
  dataDir: string;
  /** The resource limits (config.limits); the defaults when absent. */
  limits?: Limits;
  /** Counts /api/v1 requests per owner and address (RATE_LIMIT_PER_MINUTE); none when absent. */
  rateLimiter?: RateLimiter;
  /** Aborted when the API stops: waits answer and event streams end, so the server can close. */
  stopping?: AbortSignal;
  /** API_TOKENS; none (the default) is protected mode: this machine only, every caller the local owner. */
  tokens?: readonly TokenEntry[];
  /** TRUST_PROXY: off unless given. */
  trustProxy?: TrustProxy;
}

/** The HTTP app, and the OpenAPI document its routes wrote. */
export type App = Express & { readonly openapi: OpenApiDocument };

/** Probes and scrapes come every few seconds: their request lines are debug. */
const QUIET = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * helmet's headers, with a CSP the page (ES modules from this origin) and Swagger UI (its scripts
 * from /docs, inline styles, data: images) work under. No upgrade-insecure-requests: decisum is often
 * reached over plain http on a private network, where it would break every asset.
 */
function securityHeaders(): express.RequestHandler {
  return helmet({
    contentSecurityPolicy: {
      directives: {
        'default-src': ["'self'"],
        'script-src': ["'self'"],
        'style-src': ["'self'", "'unsafe-inline'"],
        'img-src': ["'self'", 'data:'],
        'connect-src': ["'self'"],
        'upgrade-insecure-requests': null,
      },
    },
  });
}

/** Builds the HTTP app from its dependencies; main.ts opens the connections and listens. */
export function createApp(deps: AppDeps): App {
  const { logger, metrics } = deps;
  const app = express();
  app.disable('x-powered-by');
  // No weak ETag (a SHA-1 of every JSON answer): job records change under the client, and file
  // downloads set their own.
  app.set('etag', false);
  app.set('trust proxy', deps.trustProxy ?? false);
  if (metrics) { app.use(timeRequests(metrics)); }
  app.use(
    pinoHttp({
      logger,
      serializers: {
        req: (req: { id: unknown; method: string; url: string }) => ({ id: req.id, method: req.method, url: req.url }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      customLogLevel: (req, res, err) => {
        if (err || res.statusCode >= 500) { return 'error'; }
        return QUIET.has((req as express.Request).originalUrl.split('?')[0]) ? 'debug' : 'info';
      },
      // Lines about one job carry its id, as every other line about it does.
      customProps: (_req, res) => {
        const jobId: unknown = (res as express.Response).locals?.jobId;
        return typeof jobId === 'string' ? { jobId } : {};
      },
    }),
  );

  app.use(securityHeaders());
  const tokens = deps.tokens ?? [];
  if (tokens.length === 0) { app.use(guardLocal); }
  app.use('/api/v1', authenticate(tokens));
  // Health, metrics, the docs and the page are never limited: probes must always get through.
  if (deps.rateLimiter) { app.use('/api/v1', rateLimit(deps.rateLimiter, logger)); }

  const docs = new ApiDocs();
  app.use(createOperationsRouter({ ready: { rabbitmq: () => deps.broker.connected, ...deps.ready }, epoch: deps.epoch }, docs));
  const jobs = '/api/v1/jobs';
  const files = '/api/v1/files';
  const events = '/api/v1/events';
  const limits = deps.limits ?? DEFAULT_LIMITS;
  app.use(jobs, requireAccess('jobs'), express.json({ limit: '64kb' }), createJobsRouter({ ...deps, maxActiveJobs: limits.activeJobsPerOwner, listColumns: limits.listColumns }, docs, jobs));
  app.use(events, createEventsRouter({ ...deps, heartbeatMs: deps.heartbeatMs ?? 15_000 }, docs, events));
  app.use(files, requireAccess('files'), createFilesRouter({ ...deps, limits }, docs, files));
  const { router: docsRouter, document } = createDocsRouter(docs);
  app.use(docsRouter);
  app.use(express.static(path.join(__dirname, '..', 'public'), { index: 'index.html' }));

  app.use(notFound);
  app.use(problemHandler(logger));
  return Object.assign(app, { openapi: document });
}
