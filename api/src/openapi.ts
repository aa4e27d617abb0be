import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { OpenAPIRegistry, OpenApiGeneratorV31, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import swaggerUi from 'swagger-ui-express';
import {
  ActiveCountSchema,
  CallbackRequestSchema,
  CallbackStateSchema,
  ColumnSumSchema,
  FileListingSchema,
  FileWrittenSchema,
  JOB_STATUSES,
  JobErrorSchema,
  JobOptionsSchema,
  JobPageSchema,
  JobResultSchema,
  JobSchema,
  JobSubmissionSchema,
  ProblemSchema,
  ProgressSchema,
  type Job,
} from '@decisum/shared';
import { problemIdentity } from './problem';

/*
 * The OpenAPI document is written by the routes themselves: each router adds its handlers through
 * `Routes.add`, which registers the operation beside the handler. The schemas are the ones that
 * validate requests and records (shared/); examples ride on `.meta()` clones made here, so the
 * shared schemas stay free of documentation.
 */

export type OpenApiDocument = ReturnType<OpenApiGeneratorV31['generateDocument']>;
export type Method = 'get' | 'put' | 'post' | 'delete';
/** An operation as registered, its path relative to the router's base. */
export type Operation = Omit<RouteConfig, 'method'>;

export const SAMPLE_ID = '0b7f6a52-3c1e-4e8a-9d2b-5f4c7e1a9b30';

const sampleColumns = [
  ['col0', 1, '87.231379072549653118'],
  ['col10', 11, '85.5182181544556908975'],
  ['col20', 21, '83.5099565716517882532'],
  ['col30', 31, '89.8093183867067968988'],
  ['col40', 41, '84.058402235531208060'],
] as const;

const sampleResult = {
  rows: 168,
  columns: sampleColumns.map(([name, index, sum]) => ({ name, index, sum, value: Number(sum), count: 168 })),
};

/** Example jobs for the documents' responses. */
export const examples = (() => {
  const queued: Job = {
    id: SAMPLE_ID,
    owner: 'alice',
    status: 'queued',
    file: 's3://decisum/data.csv',
    options: { step: 10, offset: 0 },
    createdAt: '2025-01-01T12:00:00.000Z',
    attempts: 0,
    progress: { bytesRead: 0, bytesTotal: 0, rows: 0 },
  };
  const succeeded: Job = {
    ...queued,
    status: 'succeeded',
    startedAt: '2025-01-01T12:00:00.120Z',
    finishedAt: '2025-01-01T12:00:00.180Z',
    attempts: 1,
    progress: { bytesRead: 311_548, bytesTotal: 311_548, rows: 168 },
    result: sampleResult,
  };
  const failed: Job = {
    ...queued,
    id: '7c2d9e14-81a0-4f3b-b6c5-2e9d0a4f8c61',
    file: 'reports/bad.csv',
    status: 'failed',
    startedAt: '2025-01-01T12:01:00.050Z',
    finishedAt: '2025-01-01T12:01:00.061Z',
    attempts: 1,
    progress: { bytesRead: 4096, bytesTotal: 9_812, rows: 11 },
    error: { code: 'NON_NUMERIC', message: 'row 12, column col10: "n/a" is not a number', row: 12, column: 'col10' },
  };
  return { queued, succeeded, failed };
})();

export const PROBLEM = 'application/problem+json';
export const BINARY = { type: 'string', format: 'binary' } as const;

/** `.meta({ id })` clones a schema under a component name; the shared originals stay untouched. */
function named<S extends z.ZodType>(id: string, schema: S, meta: Record<string, unknown> = {}): S {
  return schema.meta({ id, ...meta });
}

/** The named components operations refer to. */
function components() {
  const JobResult = named('JobResult', JobResultSchema.extend({ columns: z.array(named('ColumnSum', ColumnSumSchema)) }), { example: sampleResult });
  const Job = named(
    'Job',
    JobSchema.extend({
      options: named('JobOptions', JobOptionsSchema),
      progress: named('Progress', ProgressSchema),
      result: JobResult.optional(),
      error: named('JobError', JobErrorSchema).optional(),
      callback: named('CallbackState', CallbackStateSchema, {
        example: { url: 'https://hooks.example.com/decisum', status: 'delivered', attempts: 2, lastError: 'the receiver answered 503' },
      }).optional(),
    }),
  );
  return {
    Job,
    JobPage: named('JobPage', JobPageSchema.extend({ jobs: z.array(Job) })),
    ActiveCount: named('ActiveCount', ActiveCountSchema, { example: { active: 3, queued: 1, running: 2 } }),
    JobSubmission: named('JobSubmission', JobSubmissionSchema.extend({ callback: named('Callback', CallbackRequestSchema).optional() })),
    Problem: named('Problem', ProblemSchema),
    FileListing: named('FileListing', FileListingSchema),
    FileWritten: named('FileWritten', FileWrittenSchema),
  };
}

/** One problem response: [status, description, code, detail, extra fields of the example]. */
export type ProblemCase = [number, string, string, string, Record<string, unknown>?];

/** The app's OpenAPI document, filled in by the routers as they add their handlers. */
export class ApiDocs {
  private readonly registry = new OpenAPIRegistry();
  readonly schemas = components();
  private readonly bearer = this.registry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description:
      'An API token (`decisum token create`), sent as `Authorization: Bearer <token>`. In protected mode (no tokens configured) none is needed: ' +
      'only this machine is answered. Missing or wrong: 401 `UNAUTHORIZED`; a scope the token lacks: 403 `FORBIDDEN`.',
  });

  /** A router's handlers under `base`, each added with the operations that document it; every /api/v1 operation needs the bearer token. */
  routes(router: Router, base = ''): Routes {
    return new Routes(router, base, (op) => this.registry.registerPath(op.path.startsWith('/api/v1') ? this.secured(op) : op));
  }

  private secured(op: RouteConfig): RouteConfig {
    const refusals = this.problems(
      [401, 'No token, or one that is not valid (`WWW-Authenticate: Bearer realm="decisum"`)', 'UNAUTHORIZED', 'the bearer token is not valid'],
      [403, 'The token lacks the scope this operation needs, or (protected mode) the client is not on this machine (HOST_NOT_ALLOWED)', 'FORBIDDEN', 'this token lacks the jobs:write scope'],
    );
    return { ...op, security: [{ [this.bearer.name]: [] }], responses: { ...refusals, ...op.responses } };
  }

  /** Problem+json responses by status, with an example each. */
  problems(...cases: ProblemCase[]): Record<number, object> {
    return Object.fromEntries(
      cases.map(([status, description, code, detail, extra = {}]) => [
        status,
        { description, content: { [PROBLEM]: { schema: this.schemas.Problem, example: { ...problemIdentity(code), status, detail, code, ...extra } } } },
      ]),
    );
  }

  /** A job response with named examples. */
  job(description: string, byName: Record<string, Job>): object {
    const jobExamples = Object.fromEntries(Object.entries(byName).map(([name, value]) => [name, { value }]));
    return { description, content: { 'application/json': { schema: this.schemas.Job, examples: jobExamples } } };
  }

  /** The 503 of any route that reads the job store. */
  get storeUnavailable(): Record<number, object> {
    return this.problems([503, 'The job store is unreachable; retry after `Retry-After` seconds', 'STORE_UNAVAILABLE', 'the job store is unavailable; try again shortly']);
  }

  document(): OpenApiDocument {
    return new OpenApiGeneratorV31(this.registry.definitions).generateDocument({
      openapi: '3.1.0',
      info: {
        title: 'decisum',
        version: '1',
        description:
          'Sums every 10th column of CSV files in S3 or on local disk. Submit a job, then learn when it is final without polling: ' +
          'wait on it (`GET /api/v1/jobs/{id}?wait=60`), follow the event stream (`GET /api/v1/events`), or give a `callback` URL, ' +
          'which decisum POSTs the finished job to with a `Decisum-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">` header. ' +
          'Errors are `application/problem+json` with a stable `code`. Job statuses: ' +
          JOB_STATUSES.map((s) => `\`${s}\``).join(', ') +
          '.',
      },
      tags: [
        { name: 'jobs', description: 'Submit, watch and cancel summing jobs' },
        { name: 'events', description: 'Job changes and counts as they happen (Server-Sent Events)' },
        { name: 'files', description: 'Upload, download and list files in storage, streamed' },
        { name: 'operations', description: 'Health, readiness, metrics and this document' },
      ],
    });
  }
}

/**
 * Adds handlers to a router together with their OpenAPI operations. Each handler's response
 * carries its route pattern (`res.locals.route`), the label of the request metrics.
 */
export class Routes {
  constructor(
    private readonly router: Router,
    private readonly base: string,
    private readonly register: (op: RouteConfig) => void,
  ) {}

  /** `path` is express's pattern; each operation names its own documented path (one pattern may serve several). */
  add(method: Method, path: string, handler: RequestHandler, ...operations: Operation[]): void {
    for (const op of operations) { this.register({ ...op, method, path: this.under(op.path) }); }
    const route = this.under(path);
    this.router[method](path, (req, res, next) => {
      res.locals.route = route;
      return handler(req, res, next);
    });
  }

  /** A path under the base: `/` is the base itself. */
  private under(path: string): string {
    return path === '/' && this.base ? this.base : this.base + path;
  }
}

/** Serves `/openapi.json` and Swagger UI at `/docs`; the UI's assets come from swagger-ui-dist, not a CDN. Add it last: it documents the routes added before it. */
export function createDocsRouter(docs: ApiDocs): { router: Router; document: OpenApiDocument } {
  const router = Router();
  const routes = docs.routes(router);
  let html = '';
  const operation = (summary: string, description: string, media: string, schema: object): Operation => ({
    path: '',
    tags: ['operations'],
    summary,
    responses: { 200: { description, content: { [media]: { schema } } } },
  });
  routes.add(
    'get',
    '/openapi.json',
    (_req, res) => {
      res.json(document);
    },
    { ...operation('This document', 'OpenAPI 3.1', 'application/json', { type: 'object' }), path: '/openapi.json' },
  );
  routes.add(
    'get',
    '/docs',
    (req, res) => {
      // The UI's assets are relative links, which resolve only below /docs/.
      if (!req.path.endsWith('/')) { res.redirect(301, '/docs/'); }
      else { res.send(html); }
    },
    { ...operation('Swagger UI for this document', 'An HTML page', 'text/html', { type: 'string' }), path: '/docs' },
  );
  const document = docs.document();
  // The token pasted under Authorize stays across reloads of the page.
  const swaggerOptions = { persistAuthorization: true };
  html = swaggerUi.generateHTML(document, { customSiteTitle: 'decisum API', swaggerOptions });
  router.use('/docs', swaggerUi.serveFiles(document, { swaggerOptions }));
  return { router, document };
}
