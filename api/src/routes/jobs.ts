import { Router } from 'express';
import { z } from 'zod';
import {
  AppError,
  JOB_STATUSES,
  JobSubmissionSchema,
  formatLocation,
  isPermanent,
  parseLocation,
  type Broker,
  type Job,
  type JobOptions,
  type JobStore,
  type JobSubmission,
  type Logger,
  type Storage,
} from '@decisum/shared';
import { parse } from '../validate';
import type { Metrics } from '../metrics';

export interface JobsDeps {
  store: JobStore;
  broker: Pick<Broker, 'publish'>;
  storage: Storage;
  logger: Logger;
  metrics?: Metrics;
}

export const ListQuerySchema = z
  .object({
    status: z.enum(JOB_STATUSES).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(50),
    cursor: z.string().regex(/^\d+$/, 'must be a cursor from a previous page').optional(),
  })
  .strict();

const IdSchema = z.string().min(1).max(100);
const IdempotencyKeySchema = z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII');

/** The job's options as stored: absent ones (detect the delimiter, a header row) are left out. */
function jobOptions(body: JobSubmission): JobOptions {
  const options: JobOptions = { step: body.step, offset: body.offset };
  if (body.delimiter !== undefined) { options.delimiter = body.delimiter; }
  if (body.header !== undefined) { options.header = body.header; }
  return options;
}

function sameRequest(job: Job, file: string, options: JobOptions): boolean {
  return job.file === file && JSON.stringify(job.options) === JSON.stringify(options);
}

export function createJobsRouter({ store, broker, storage, logger, metrics }: JobsDeps): Router {
  const router = Router();

  router.post('/', async (req, res) => {
    const body = parse(JobSubmissionSchema, req.body ?? {}, 'body');
    const rawKey = req.get('Idempotency-Key');
    const idempotencyKey = rawKey === undefined ? undefined : parse(IdempotencyKeySchema, rawKey, 'Idempotency-Key');
    const location = parseLocation(body.file);
    const file = formatLocation(location);
    const options = jobOptions(body);
    await storage.stat(location).catch((err: unknown) => {
      // Only a definite answer (missing, forbidden, a folder) refuses the job; an unreachable store is the executor's to retry.
      if (isPermanent(err)) { throw err; }
      logger.warn({ err, file }, 'could not check the file at submission; accepting the job');
    });

    const { job, created } = await store.create({ file, options }, idempotencyKey);
    const log = logger.child({ jobId: job.id });
    if (!created) {
      if (!sameRequest(job, file, options)) {
        throw new AppError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used for a different request', { status: 422 });
      }
      res.setHeader('Idempotent-Replayed', 'true');
    } else {
      try {
        await broker.publish({ id: job.id, file, options: job.options });
      } catch (err) {
        // Nothing was accepted: take the record back so the 503 leaves no job behind.
        await store.discard(job.id, idempotencyKey).catch((e: unknown) => log.error({ err: e }, 'discard failed; the sweeper will publish it'));
        throw err;
      }
      await store.markPublished(job.id).catch((err: unknown) => log.warn({ err }, 'could not clear the outbox entry'));
      metrics?.jobsSubmitted.inc();
      log.info({ file, options: job.options }, 'job accepted');
    }
    res.status(202).location(`/api/v1/jobs/${job.id}`).json(job);
  });

  router.get('/active', async (_req, res) => {
    res.json(await store.counts());
  });

  router.get('/', async (req, res) => {
    const q = parse(ListQuerySchema, req.query, 'query');
    res.json(await store.list(q));
  });

  router.get('/:id', async (req, res) => {
    const id = parse(IdSchema, req.params.id, 'id');
    const job = await store.get(id);
    if (!job) { throw new AppError('JOB_NOT_FOUND', `no job with id ${id}`, { status: 404 }); }
    res.json(job);
  });

  router.delete('/:id', async (req, res) => {
    const id = parse(IdSchema, req.params.id, 'id');
    const outcome = await store.cancel(id);
    if (outcome === 'missing') { throw new AppError('JOB_NOT_FOUND', `no job with id ${id}`, { status: 404 }); }
    if (outcome !== 'ended') {
      throw new AppError('JOB_FINISHED', `job ${id} already ${outcome}; only queued or running jobs can be cancelled`, { status: 409 });
    }
    logger.info({ jobId: id }, 'job cancelled');
    res.json(await store.get(id));
  });

  return router;
}
