import { Router } from 'express';
import { z } from 'zod';
import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import swaggerUi from 'swagger-ui-express';
import {
  ActiveCountSchema,
  ColumnSumSchema,
  ERROR_CODES,
  JOB_STATUSES,
  JobErrorSchema,
  JobOptionsSchema,
  JobResultSchema,
  JobSchema,
  JobSubmissionSchema,
  ProgressSchema,
  type Job,
} from '@decisum/shared';
import { ListQuerySchema } from './routes/jobs';
import { problemIdentity } from './problem';

/*
 * The document is generated from the schemas that validate requests and records (shared/src/job.ts).
 * Examples ride on `.meta()` clones made here, so the shared schemas stay free of documentation.
 */

const SAMPLE_ID = '0b7f6a52-3c1e-4e8a-9d2b-5f4c7e1a9b30';

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

const queuedJob: Job = {
  id: SAMPLE_ID,
  status: 'queued',
  file: 's3://decisum/data.csv',
  options: { step: 10, offset: 0 },
  createdAt: '2025-01-01T12:00:00.000Z',
  attempts: 0,
  progress: { bytesRead: 0, bytesTotal: 0, rows: 0 },
};

const succeededJob: Job = {
  ...queuedJob,
  status: 'succeeded',
  startedAt: '2025-01-01T12:00:00.120Z',
  finishedAt: '2025-01-01T12:00:00.180Z',
  attempts: 1,
  progress: { bytesRead: 311_548, bytesTotal: 311_548, rows: 168 },
  result: sampleResult,
};

const failedJob: Job = {
  ...queuedJob,
  id: '7c2d9e14-81a0-4f3b-b6c5-2e9d0a4f8c61',
  file: 'reports/bad.csv',
  status: 'failed',
  startedAt: '2025-01-01T12:01:00.050Z',
  finishedAt: '2025-01-01T12:01:00.061Z',
  attempts: 1,
  progress: { bytesRead: 4096, bytesTotal: 9_812, rows: 11 },
  error: { code: 'NON_NUMERIC', message: 'row 12, column col10: "n/a" is not a number', row: 12, column: 'col10' },
};

const problem = (code: string, status: number, detail: string, extra: Record<string, unknown> = {}) => ({
  ...problemIdentity(code),
  status,
  detail,
  code,
  ...extra,
});

/** Schemas of the files API and the operational endpoints, which have no zod schema of their own elsewhere. */
export const FileEntrySchema = z.object({
  path: z.string().describe('relative to the listed root: the path under DATA_DIR, or the S3 key'),
  location: z.string().describe('the LOCATION to submit as a job\'s `file`'),
  size: z.number().int().describe('bytes'),
  modified: z.string().describe('ISO 8601 modification time'),
});

export const FileListingSchema = z.object({
  location: z.string(),
  entries: z.array(FileEntrySchema),
});

export const FileWrittenSchema = z.object({
  location: z.string(),
  size: z.number().int(),
  modified: z.string(),
});

export const ProblemSchema = z.object({
  type: z.string().describe('a URI naming the kind of problem'),
  title: z.string(),
  status: z.number().int(),
  detail: z.string().describe('what went wrong, in words'),
  code: z.enum(ERROR_CODES).describe('stable code to match on'),
  row: z.number().int().optional(),
  column: z.string().optional(),
  fields: z.array(z.string()).optional().describe('for VALIDATION: the fields at fault'),
});

const jobPageOf = <J extends z.ZodType>(job: J) =>
  z.object({
    jobs: z.array(job),
    nextCursor: z.string().optional().describe('pass as `cursor` for the next page; absent on the last page'),
  });
export const JobPageSchema = jobPageOf(JobSchema);

export const HealthSchema = z.object({ status: z.literal('ok') });
export const ReadySchema = z.object({
  status: z.enum(['ready', 'unavailable']),
  checks: z.record(z.string(), z.boolean()).describe('each dependency by name: whether it answered'),
});

const PROBLEM = 'application/problem+json';
const BINARY = { type: 'string', format: 'binary' } as const;

export function buildOpenApi(): ReturnType<OpenApiGeneratorV31['generateDocument']> {
  const registry = new OpenAPIRegistry();

  // `.meta({ id })` clones a schema under a component name; the shared originals stay untouched.
  const named = <S extends z.ZodType>(id: string, schema: S, meta: Record<string, unknown> = {}): S => schema.meta({ id, ...meta });
  const ColumnSum = named('ColumnSum', ColumnSumSchema);
  const JobResult = named('JobResult', JobResultSchema.extend({ columns: z.array(ColumnSum) }), { example: sampleResult });
  const Job = named(
    'Job',
    JobSchema.extend({
      options: named('JobOptions', JobOptionsSchema),
      progress: named('Progress', ProgressSchema),
      result: JobResult.optional(),
      error: named('JobError', JobErrorSchema).optional(),
    }),
  );
  const JobPage = named('JobPage', jobPageOf(Job));
  const ActiveCount = named('ActiveCount', ActiveCountSchema, { example: { active: 3, queued: 1, running: 2 } });
  const Submission = named('JobSubmission', JobSubmissionSchema);
  const Problem = named('Problem', ProblemSchema);
  const FileListing = named('FileListing', FileListingSchema);
  const FileWritten = named('FileWritten', FileWrittenSchema);

  const problems = (...cases: [number, string, string, string, Record<string, unknown>?][]) =>
    Object.fromEntries(
      cases.map(([status, description, code, detail, extra]) => [
        status,
        { description, content: { [PROBLEM]: { schema: Problem, example: problem(code, status, detail, extra) } } },
      ]),
    );
  const unavailable = problems([503, 'The job store is unreachable; retry after `Retry-After` seconds', 'STORE_UNAVAILABLE', 'the job store is unavailable; try again shortly']);
  const jobJson = (description: string, examples: Record<string, Job>) => ({
    description,
    content: {
      'application/json': {
        schema: Job,
        examples: Object.fromEntries(Object.entries(examples).map(([k, value]) => [k, { value }])),
      },
    },
  });
  const idParams = z.object({ id: z.string().min(1).max(100).meta({ description: 'the job id', example: SAMPLE_ID }) });

  registry.registerPath({
    method: 'post',
    path: '/api/v1/jobs',
    tags: ['jobs'],
    summary: 'Submit a job',
    description:
      'Records the job and publishes it to the work queue; answers 202 only once both hold it. ' +
      'A local file that does not exist is refused with 404 here; anything not checkable at once fails the job later.',
    request: {
      headers: z.object({
        'Idempotency-Key': z.string().min(1).max(255).optional().meta({
          description: 'a repeated request with the same key and body returns the first job instead of a new one',
        }),
      }),
      body: {
        required: true,
        content: {
          'application/json': {
            schema: Submission,
            examples: {
              sample: { summary: 'every 10th column', value: { file: 's3://decisum/data.csv' } },
              tenth: { summary: 'the 10th, 20th, … columns', value: { file: 'reports/a.csv', offset: 9 } },
              options: { summary: 'all options', value: { file: 'file:reports/a.tsv', step: 5, offset: 1, delimiter: '\t', header: true } },
            },
          },
        },
      },
    },
    responses: {
      202: {
        ...jobJson('Accepted: the job is queued', { queued: queuedJob }),
        headers: z.object({
          Location: z.string().meta({ example: `/api/v1/jobs/${SAMPLE_ID}` }),
          'Idempotent-Replayed': z.literal('true').optional().meta({ description: 'present when an earlier job was returned' }),
        }),
      },
      ...problems(
        [400, 'Invalid body or a path outside DATA_DIR', 'VALIDATION', 'invalid step: Too small: expected number to be >=1', { fields: ['step'] }],
        [404, 'The file does not exist', 'FILE_NOT_FOUND', 'reports/a.csv does not exist'],
        [413, 'The body is too large', 'VALIDATION', 'the request body is too large'],
        [422, 'The Idempotency-Key was used for a different request', 'IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used for a different request'],
      ),
      ...problems([503, 'The job store or broker is unreachable; nothing was accepted', 'BROKER_UNAVAILABLE', 'the queue is unavailable; try again shortly']),
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/api/v1/jobs',
    tags: ['jobs'],
    summary: 'List jobs, newest first',
    request: { query: ListQuerySchema },
    responses: {
      200: {
        description: 'A page of jobs',
        content: { 'application/json': { schema: JobPage, example: { jobs: [succeededJob], nextCursor: '41' } } },
      },
      ...problems([400, 'Invalid query', 'VALIDATION', 'invalid limit: Too small: expected number to be >=1', { fields: ['limit'] }]),
      ...unavailable,
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/api/v1/jobs/active',
    tags: ['jobs'],
    summary: 'Count jobs in work',
    description: '`active = queued + running`; a running job counts only while its executor renews its lease.',
    responses: {
      200: { description: 'The counts', content: { 'application/json': { schema: ActiveCount } } },
      ...unavailable,
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/api/v1/jobs/{id}',
    tags: ['jobs'],
    summary: 'Get a job',
    description: '`result` is present once the job succeeded, `error` once it failed. Poll until `status` is final.',
    request: { params: idParams },
    responses: {
      200: jobJson('The job', { succeeded: succeededJob, failed: failedJob, queued: queuedJob }),
      ...problems([404, 'No such job', 'JOB_NOT_FOUND', `no job with id ${SAMPLE_ID}`]),
      ...unavailable,
    },
  });

  registry.registerPath({
    method: 'delete',
    path: '/api/v1/jobs/{id}',
    tags: ['jobs'],
    summary: 'Cancel a queued or running job',
    request: { params: idParams },
    responses: {
      200: jobJson('The cancelled job', { cancelled: { ...queuedJob, status: 'cancelled', finishedAt: '2025-01-01T12:00:01.000Z' } }),
      ...problems(
        [404, 'No such job', 'JOB_NOT_FOUND', `no job with id ${SAMPLE_ID}`],
        [409, 'The job already finished', 'JOB_FINISHED', `job ${SAMPLE_ID} already succeeded; only queued or running jobs can be cancelled`],
      ),
      ...unavailable,
    },
  });

  const fileProblems = problems(
    [400, 'A path outside DATA_DIR, or an invalid bucket name', 'PATH_OUTSIDE_DATA_DIR', '../x.csv is outside DATA_DIR: give a path relative to it'],
    [403, 'Storage refused access', 'FILE_ACCESS_DENIED', 'access denied to s3://decisum/data.csv'],
    [404, 'The file does not exist', 'FILE_NOT_FOUND', 'reports/a.csv does not exist'],
  );
  const storageDown = problems([503, 'Storage is unreachable', 'STORAGE_UNAVAILABLE', 'storage did not answer; try again shortly']);
  const listing = (example: object) => ({
    200: { description: 'The files under the folder, recursively', content: { 'application/json': { schema: FileListing, example } } },
    ...fileProblems,
    ...storageDown,
  });
  const download = {
    200: {
      description: 'The file, streamed; a path ending in `/` lists the folder instead (see the listing operation)',
      content: {
        'text/csv': { schema: BINARY },
        'application/octet-stream': { schema: BINARY },
        'application/json': { schema: FileListing },
      },
    },
    ...fileProblems,
    ...storageDown,
  };
  const upload = (location: string) => ({
    201: {
      description: 'Written; `Location` is the file\'s URL',
      content: { 'application/json': { schema: FileWritten, example: { location, size: 311_548, modified: '2025-01-01T12:00:00.000Z' } } },
    },
    ...fileProblems,
    ...problems([412, 'With `If-None-Match: *`: the file exists, and was left as it was', 'FILE_EXISTS', `${location} already exists`]),
    ...storageDown,
  });
  const createOnly = z.object({
    'If-None-Match': z.literal('*').optional().meta({ description: '`*`: create the file, never replace one (412 `FILE_EXISTS` if it exists)' }),
  });
  const uploadBody = {
    required: true,
    description: 'The file\'s bytes, streamed to storage (send `Content-Length` when known)',
    content: { 'application/octet-stream': { schema: BINARY }, 'text/csv': { schema: BINARY } },
  };
  const localPath = z.object({
    path: z.string().meta({ description: 'path under DATA_DIR; may contain `/`', example: 'reports/a.csv' }),
  });
  const s3Params = z.object({
    bucket: z.string().meta({ example: 'decisum' }),
    key: z.string().meta({ description: 'object key; may contain `/`', example: 'data.csv' }),
  });
  const bucketParam = z.object({ bucket: z.string().meta({ example: 'decisum' }) });

  registry.registerPath({
    method: 'get',
    path: '/api/v1/files/local/',
    tags: ['files'],
    summary: 'List the files under DATA_DIR',
    description: 'Any path ending in `/` lists that folder: `/api/v1/files/local/reports/`.',
    responses: listing({ location: '', entries: [{ path: 'data.csv', location: 'data.csv', size: 311_548, modified: '2025-01-01T12:00:00.000Z' }] }),
  });
  registry.registerPath({
    method: 'get',
    path: '/api/v1/files/local/{path}',
    tags: ['files'],
    summary: 'Download a local file (or list a folder: end the path with `/`)',
    request: { params: localPath },
    responses: download,
  });
  registry.registerPath({
    method: 'put',
    path: '/api/v1/files/local/{path}',
    tags: ['files'],
    summary: 'Upload a local file',
    description: 'Streams the body to DATA_DIR/path, creating folders; the file appears whole or not at all. An existing file is replaced unless `If-None-Match: *` is sent.',
    request: { params: localPath, headers: createOnly, body: uploadBody },
    responses: upload('reports/a.csv'),
  });
  registry.registerPath({
    method: 'get',
    path: '/api/v1/files/s3/{bucket}/',
    tags: ['files'],
    summary: 'List the objects of a bucket',
    description: 'Any key ending in `/` lists that prefix: `/api/v1/files/s3/decisum/reports/`.',
    request: { params: bucketParam },
    responses: listing({
      location: 's3://decisum/',
      entries: [{ path: 'data.csv', location: 's3://decisum/data.csv', size: 311_548, modified: '2025-01-01T12:00:00.000Z' }],
    }),
  });
  registry.registerPath({
    method: 'get',
    path: '/api/v1/files/s3/{bucket}/{key}',
    tags: ['files'],
    summary: 'Download an S3 object (or list a prefix: end the key with `/`)',
    request: { params: s3Params },
    responses: download,
  });
  registry.registerPath({
    method: 'put',
    path: '/api/v1/files/s3/{bucket}/{key}',
    tags: ['files'],
    summary: 'Upload an S3 object',
    request: { params: s3Params, headers: createOnly, body: uploadBody },
    responses: upload('s3://decisum/data.csv'),
  });

  registry.registerPath({
    method: 'get',
    path: '/healthz',
    tags: ['operations'],
    summary: 'Liveness',
    responses: { 200: { description: 'The process is up', content: { 'application/json': { schema: HealthSchema } } } },
  });
  const readyExample = { status: 'ready', checks: { rabbitmq: true, redis: true } };
  registry.registerPath({
    method: 'get',
    path: '/readyz',
    tags: ['operations'],
    summary: 'Readiness: Redis and RabbitMQ reachable',
    responses: {
      200: { description: 'Ready', content: { 'application/json': { schema: ReadySchema, example: readyExample } } },
      503: {
        description: 'A dependency is unreachable',
        content: { 'application/json': { schema: ReadySchema, example: { status: 'unavailable', checks: { rabbitmq: false, redis: true } } } },
      },
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/metrics',
    tags: ['operations'],
    summary: 'Prometheus metrics',
    description: 'Jobs submitted, the queued and running gauges and process metrics. Executors serve their own on `EXECUTOR_METRICS_PORT`.',
    responses: {
      200: {
        description: 'Prometheus text exposition format',
        content: {
          'text/plain': {
            schema: { type: 'string' },
            example: '# HELP decisum_jobs_queued Jobs waiting for an executor\n# TYPE decisum_jobs_queued gauge\ndecisum_jobs_queued 0\n',
          },
        },
      },
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/openapi.json',
    tags: ['operations'],
    summary: 'This document',
    responses: { 200: { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } } },
  });
  registry.registerPath({
    method: 'get',
    path: '/docs',
    tags: ['operations'],
    summary: 'Swagger UI for this document',
    responses: { 200: { description: 'An HTML page', content: { 'text/html': { schema: { type: 'string' } } } } },
  });

  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'decisum',
      version: '1',
      description:
        'Sums every 10th column of CSV files in S3 or on local disk. Submit a job, poll it until `status` is final, read `result`. ' +
        'Errors are `application/problem+json` with a stable `code`. Job statuses: ' +
        JOB_STATUSES.map((s) => `\`${s}\``).join(', ') +
        '.',
    },
    tags: [
      { name: 'jobs', description: 'Submit, watch and cancel summing jobs' },
      { name: 'files', description: 'Upload, download and list files in storage, streamed' },
      { name: 'operations', description: 'Health, readiness, metrics and this document' },
    ],
  });
}

/** Serves `/openapi.json` and Swagger UI at `/docs`; the UI's assets come from swagger-ui-dist, not a CDN. */
export function createDocsRouter(doc: object = buildOpenApi()): Router {
  const router = Router();
  const html = swaggerUi.generateHTML(doc, { customSiteTitle: 'decisum API' });
  router.get('/openapi.json', (_req, res) => {
    res.json(doc);
  });
  router.get('/docs', (req, res) => {
    // The UI's assets are relative links, which resolve only below /docs/.
    if (!req.path.endsWith('/')) { res.redirect(301, '/docs/'); }
    else { res.send(html); }
  });
  router.use('/docs', swaggerUi.serveFiles(doc));
  return router;
}
