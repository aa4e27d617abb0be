import {
  AppError,
  LOCAL_OWNER,
  NO_CALLBACK_HOSTS,
  checkCallbackUrl,
  formatLocation,
  isPermanent,
  parseLocation,
  type Broker,
  type CallbackHosts,
  type Job,
  type JobMessage,
  type JobOptions,
  type JobStore,
  type JobSubmission,
  type Logger,
  type Storage,
} from '@decisum/shared';
import type { Metrics } from './metrics';

export interface SubmitDeps {
  store: JobStore;
  broker: Pick<Broker, 'publish'>;
  storage: Storage;
  logger: Logger;
  metrics?: Pick<Metrics, 'jobsSubmitted'>;
  /** Where callbacks may go (CALLBACK_HOSTS); none when absent. */
  callbackHosts?: CallbackHosts;
  /** MAX_ACTIVE_JOBS_PER_OWNER; 0 or absent: no limit (429 TOO_MANY_ACTIVE_JOBS past it). */
  maxActiveJobs?: number;
}

export interface Submitted {
  job: Job;
  /** An earlier submission with the same Idempotency-Key made this job. */
  replayed: boolean;
}

/**
 * Accepts a job: the file is checked where that is cheap, the job is recorded, then published, and it
 * is accepted only once the broker confirmed. A publication that fails takes the record back, so a
 * refused submission leaves nothing behind; a record whose confirmation was lost is the outbox's.
 */
export async function submitJob(deps: SubmitDeps, submission: JobSubmission, owner: string = LOCAL_OWNER, idempotencyKey?: string): Promise<Submitted> {
  const { store, logger } = deps;
  const location = parseLocation(submission.file);
  const file = formatLocation(location);
  const options = jobOptions(submission);
  const callbackUrl = submission.callback && checkCallbackUrl(submission.callback.url, deps.callbackHosts ?? NO_CALLBACK_HOSTS).href;
  await deps.storage.stat(location).catch((err: unknown) => {
    // Only a definite answer (missing, forbidden, a folder) refuses the job; an unreachable store is the executor's to retry.
    if (isPermanent(err)) { throw err; }
    logger.warn({ err, file }, 'could not check the file at submission; accepting the job');
  });

  const { job, message, created } = await store.create({ owner, file, options, callbackUrl, activeLimit: deps.maxActiveJobs }, idempotencyKey);
  if (!created) {
    if (job.file !== file || JSON.stringify(job.options) !== JSON.stringify(options) || job.callback?.url !== callbackUrl) {
      throw new AppError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used for a different request', { status: 422 });
    }
    return { job, replayed: true };
  }
  const log = logger.child({ jobId: job.id });
  try {
    await publishRecorded(deps, message, log);
  } catch (err) {
    // Taking the record back also gives back its place among the owner's active jobs.
    await store.discard(job.id, idempotencyKey, owner).catch((e: unknown) => log.error({ err: e }, 'discard failed; the sweeper will publish it'));
    throw err;
  }
  deps.metrics?.jobsSubmitted.inc();
  log.info({ file, options: job.options, callback: callbackUrl !== undefined }, 'job accepted');
  return { job, replayed: false };
}

/**
 * Publishes a recorded job's durable copy (JobStore.copy) and takes it out of the outbox; the
 * submission and the outbox sweeper both end here. An entry left in the outbox only means one more
 * publication, which executors ack without work.
 */
export async function publishRecorded(deps: Pick<SubmitDeps, 'store' | 'broker'>, message: JobMessage, log: Logger): Promise<void> {
  await deps.broker.publish(message);
  // Not awaited: the job is accepted once the broker confirmed it, and the entry is only a hint to the sweeper.
  void deps.store.markPublished(message.id).catch((err: unknown) => log.warn({ err }, 'could not clear the outbox entry'));
}

/** The job's options as stored: absent ones (detect the delimiter, a header row) are left out. */
function jobOptions(submission: JobSubmission): JobOptions {
  const options: JobOptions = { step: submission.step, offset: submission.offset };
  if (submission.delimiter !== undefined) { options.delimiter = submission.delimiter; }
  if (submission.header !== undefined) { options.header = submission.header; }
  return options;
}
