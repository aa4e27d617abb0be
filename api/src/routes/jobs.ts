import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { AppError, JOB_STATUSES, JobSubmissionSchema, withColumnsCut, type Job, type JobFeed, type JobStore, type ResultsArchive } from '@decisum/shared';
import { canSee, type Principal } from '../auth';
import { SAMPLE_ID, examples, type ApiDocs } from '../openapi';
import { submitJob, type SubmitDeps } from '../submit';
import { parse } from '../validate';

export type JobsDeps = SubmitDeps & {
  store: JobStore;
  feed: JobFeed;
  /** Finished jobs past Redis: read when Redis has no record. */
  archive?: ResultsArchive;
  /** Aborted when the API stops: waiting requests answer at once with the job as it is. */
  stopping?: AbortSignal;
  /** LIST_MAX_COLUMNS: per-column results each job carries in a list page. */
  listColumns: number;
};

/** The longest `?wait`, in seconds. */
export const MAX_WAIT_SECONDS = 60;

const GetQuerySchema = z
  .object({
    wait: z.coerce
      .number()
      .min(0)
      .max(MAX_WAIT_SECONDS)
      .optional()
      .meta({ description: `answer once the job is final, or after this many seconds (at most ${MAX_WAIT_SECONDS}) with the job as it is then`, example: 30 }),
  })
  .strict();

export const ListQuerySchema = z
  .object({
    status: z.enum(JOB_STATUSES).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(50),
    cursor: z.string().regex(/^\d+$/, 'must be a cursor from a previous page').optional(),
  })
  .strict();

export const IdSchema = z.string().min(1).max(100);
const IdempotencyKeySchema = z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII');
const idParams = z.object({ id: IdSchema.meta({ description: 'the job id', example: SAMPLE_ID }) });

/** Request logs of this response carry the job's id. */
export function aboutJob(res: Response, id: string): void {
  res.locals.jobId = id;
}

/** The job id in the path, validated; the response is about that job. */
function jobIdOf(req: Request, res: Response): string {
  const id = parse(IdSchema, req.params.id, 'id');
  aboutJob(res, id);
  return id;
}

function principalOf(res: Response): Principal {
  return res.locals.principal as Principal;
}

export function noSuchJob(id: string): AppError {
  return new AppError('JOB_NOT_FOUND', `no job with id ${id}`, { status: 404 });
}

/** The job as Redis holds it, or as the results archive kept it once finished (Redis lost or expired it); only if the principal may see it. */
export async function findJob(deps: Pick<JobsDeps, 'store' | 'archive'>, principal: Principal, id: string): Promise<Job | undefined> {
  const job = (await deps.store.get(id)) ?? (await deps.archive?.get(id));
  return job && canSee(principal, job) ? job : undefined;
}

/** The jobs API, mounted at /api/v1/jobs: each handler with the OpenAPI operation it answers to. */
export function createJobsRouter(deps: JobsDeps, docs: ApiDocs, base: string): Router {
  const { store, feed, logger } = deps;
  const router = Router();
  const routes = docs.routes(router, base);
  const { schemas } = docs;

  routes.add(
    'post',
    '/',
    async (req, res) => {
      const submission = parse(JobSubmissionSchema, req.body ?? {}, 'body');
      const key = req.get('Idempotency-Key');
      const idempotencyKey = key === undefined ? undefined : parse(IdempotencyKeySchema, key, 'Idempotency-Key');
      const { job, replayed } = await submitJob(deps, submission, principalOf(res).owner, idempotencyKey);
      aboutJob(res, job.id);
      if (replayed) { res.setHeader('Idempotent-Replayed', 'true'); }
      res.status(202).location(`${base}/${job.id}`).json(job);
    },
    {
      path: '/',
      tags: ['jobs'],
      summary: 'Submit a job',
      description:
        'Records the job and publishes it to the work queue; answers 202 only once both hold it. ' +
        'A local file that does not exist is refused with 404 here; anything not checkable at once fails the job later. ' +
        'With `callback.url` (its host in `CALLBACK_HOSTS`, else 400 `CALLBACK_NOT_ALLOWED`), the job is POSTed there once final, ' +
        'signed with `Decisum-Signature`, retried with backoff until accepted (2xx); `callback` on the job records the delivery.',
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
              schema: schemas.JobSubmission,
              examples: {
                sample: { summary: 'every 10th column', value: { file: 's3://decisum/data.csv' } },
                tenth: { summary: 'the 10th, 20th, … columns', value: { file: 'reports/a.csv', offset: 9 } },
                options: { summary: 'all options', value: { file: 'file:reports/a.tsv', step: 5, offset: 1, delimiter: '\t', header: true } },
                callback: { summary: 'with a webhook', value: { file: 's3://decisum/data.csv', callback: { url: 'https://hooks.example.com/decisum' } } },
              },
            },
          },
        },
      },
      responses: {
        202: {
          ...docs.job('Accepted: the job is queued', { queued: examples.queued }),
          headers: z.object({
            Location: z.string().meta({ example: `${base}/${SAMPLE_ID}` }),
            'Idempotent-Replayed': z.literal('true').optional().meta({ description: 'present when an earlier job was returned' }),
          }),
        },
        ...docs.problems(
          [400, 'Invalid body, a path outside DATA_DIR, a callback host not in CALLBACK_HOSTS, or a bucket in a region S3 will not redirect to (S3_WRONG_REGION)', 'VALIDATION', 'invalid step: Too small: expected number to be >=1', { fields: ['step'] }],
          [403, 'Storage refused access (FILE_ACCESS_DENIED), or decisum\'s S3 credentials are missing or refused (S3_CREDENTIALS_MISSING, S3_CREDENTIALS_INVALID)', 'FILE_ACCESS_DENIED', 's3://decisum/data.csv: access denied'],
          [404, 'The file or its bucket does not exist (FILE_NOT_FOUND, BUCKET_NOT_FOUND)', 'FILE_NOT_FOUND', 'reports/a.csv does not exist'],
          [413, 'The body is too large', 'VALIDATION', 'the request body is too large'],
          [422, 'The Idempotency-Key was used for a different request', 'IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used for a different request'],
          [503, 'The job store or broker is unreachable; nothing was accepted', 'BROKER_UNAVAILABLE', 'the queue is unavailable; try again shortly'],
        ),
      },
    },
  );

  routes.add(
    'get',
    '/',
    async (req, res) => {
      const principal = principalOf(res);
      const owner = principal.scopes.includes('admin') ? undefined : principal.owner;
      const page = await store.list({ ...parse(ListQuerySchema, req.query, 'query'), owner });
      res.json({ ...page, jobs: page.jobs.map((job) => withColumnsCut(job, deps.listColumns)) });
    },
    {
      path: '/',
      tags: ['jobs'],
      summary: 'List jobs, newest first',
      description:
        'Each job carries at most LIST_MAX_COLUMNS (100 by default) per-column results; a job cut this way has `result.columnsTruncated: true` ' +
        'and `result.columnCount`. `GET /api/v1/jobs/{id}` returns every column.',
      request: { query: ListQuerySchema },
      responses: {
        200: {
          description: 'A page of jobs',
          content: { 'application/json': { schema: schemas.JobPage, example: { jobs: [examples.succeeded], nextCursor: '41' } } },
        },
        ...docs.problems([400, 'Invalid query', 'VALIDATION', 'invalid limit: Too small: expected number to be >=1', { fields: ['limit'] }]),
        ...docs.storeUnavailable,
      },
    },
  );

  routes.add(
    'get',
    '/active',
    async (_req, res) => {
      res.json(await store.counts());
    },
    {
      path: '/active',
      tags: ['jobs'],
      summary: 'Count jobs in work',
      description: '`active = queued + running`; a running job counts only while its executor renews its lease.',
      responses: {
        200: { description: 'The counts', content: { 'application/json': { schema: schemas.ActiveCount } } },
        ...docs.storeUnavailable,
      },
    },
  );

  routes.add(
    'get',
    '/:id',
    async (req, res) => {
      const id = jobIdOf(req, res);
      const { wait } = parse(GetQuerySchema, req.query, 'query');
      const principal = principalOf(res);
      const read = async () => {
        const job = await findJob(deps, principal, id);
        if (!job) { throw noSuchJob(id); }
        return job;
      };
      if (!wait) {
        res.json(await read());
        return;
      }
      // A request held open on purpose is timed under a route of its own, apart from the quick answers.
      res.locals.route = `${base}/:id?wait`;
      const left = new AbortController();
      res.on('close', () => left.abort());
      const job = await feed.untilFinal(id, read, wait * 1000, AbortSignal.any([left.signal, ...(deps.stopping ? [deps.stopping] : [])]));
      if (!job) { throw noSuchJob(id); }
      res.json(job);
    },
    {
      path: '/{id}',
      tags: ['jobs'],
      summary: 'Get a job, or wait for it to finish',
      description:
        '`result` is present once the job succeeded, `error` once it failed; a finished job Redis no longer holds is read from the results archive. With `?wait=SECONDS` the answer comes as soon as the job is final ' +
        '(within milliseconds of its outcome being written), or when the time is up with the job as it is then: no need to poll.',
      request: { params: idParams, query: GetQuerySchema },
      responses: {
        200: docs.job('The job', examples),
        ...docs.problems(
          [400, 'Invalid query', 'VALIDATION', 'invalid wait: Too big: expected number to be <=60', { fields: ['wait'] }],
          [404, 'No such job', 'JOB_NOT_FOUND', `no job with id ${SAMPLE_ID}`],
        ),
        ...docs.storeUnavailable,
      },
    },
  );

  routes.add(
    'delete',
    '/:id',
    async (req, res) => {
      const id = jobIdOf(req, res);
      // Another owner's job is as absent as one that never was, so ids cannot be probed.
      const job = await store.get(id);
      if (!job || !canSee(principalOf(res), job)) { throw noSuchJob(id); }
      const outcome = await store.cancel(id);
      if (outcome === 'missing') { throw noSuchJob(id); }
      if (outcome !== 'ended') {
        throw new AppError('JOB_FINISHED', `job ${id} already ${outcome}; only queued or running jobs can be cancelled`, { status: 409 });
      }
      logger.info({ jobId: id }, 'job cancelled');
      res.json(await store.get(id));
    },
    {
      path: '/{id}',
      tags: ['jobs'],
      summary: 'Cancel a queued or running job',
      request: { params: idParams },
      responses: {
        200: docs.job('The cancelled job', { cancelled: { ...examples.queued, status: 'cancelled', finishedAt: '2025-01-01T12:00:01.000Z' } }),
        ...docs.problems(
          [404, 'No such job', 'JOB_NOT_FOUND', `no job with id ${SAMPLE_ID}`],
          [409, 'The job already finished', 'JOB_FINISHED', `job ${SAMPLE_ID} already succeeded; only queued or running jobs can be cancelled`],
        ),
        ...docs.storeUnavailable,
      },
    },
  );

  return router;
}
