import {
  isPermanent,
  pause,
  retryDelay,
  toErrorBody,
  type ErrorBody,
  type JobMessage,
  type JobResult,
  type JobStore,
  type Logger,
} from '@decisum/shared';
import type { Archiver } from './archiving';
import type { Lease, LeaseManager, StopReason } from './lease';
import type { ExecutorMetrics } from './metrics';
import { untilStored } from './persist';

/** What came of one attempt. */
export type Outcome =
  | { kind: 'succeeded'; result: JobResult }
  /** Retrying cannot help: bad data, a missing file. */
  | { kind: 'failed'; error: ErrorBody }
  /** Retrying may help: storage unreachable, anything unexpected. */
  | { kind: 'transient'; error: ErrorBody; cause: unknown }
  | { kind: 'stopped'; reason: StopReason };

/** What becomes of the message: acked once the outcome is in Redis, or requeued to run again. */
export type Disposition = 'ack' | 'requeue';

/** A computation's result or error, read against why (if at all) the job was told to stop. */
export function classify(computed: { result: JobResult } | { err: unknown }, signal: AbortSignal): Outcome {
  const reason = signal.aborted ? (signal.reason as StopReason) : undefined;
  // A job cancelled or taken over writes nothing, whatever it computed.
  if (reason === 'cancelled') { return { kind: 'stopped', reason }; }
  if ('result' in computed) { return { kind: 'succeeded', result: computed.result }; }
  // Our own abort surfaces as a permanent CANCELLED read error: that is a stop, not the job's outcome.
  if (reason) { return { kind: 'stopped', reason }; }
  if (isPermanent(computed.err)) { return { kind: 'failed', error: toErrorBody(computed.err) }; }
  return { kind: 'transient', error: toErrorBody(computed.err), cause: computed.err };
}

export interface OutcomeDeps {
  store: JobStore;
  leases: LeaseManager;
  archiver: Archiver;
  logger: Logger;
  metrics?: ExecutorMetrics;
  /** Aborted when the executor stops waiting: a backoff before a retry is cut short. */
  stopping: AbortSignal;
}

export interface OutcomeOptions {
  /** The first delay before a transiently failed job goes back to the queue; it doubles per attempt. */
  retryBackoffMs: number;
}

const MAX_RETRY_BACKOFF_MS = 30_000;

/** Writes an attempt's outcome, counts it, and says what becomes of its message. */
export class OutcomeHandler {
  constructor(
    private readonly deps: OutcomeDeps,
    private readonly options: OutcomeOptions,
  ) {}

  async settle(lease: Lease, outcome: Outcome, seconds: number): Promise<Disposition> {
    switch (outcome.kind) {
      case 'succeeded':
        return this.record(lease, { result: outcome.result }, seconds);
      case 'failed':
        return this.record(lease, { error: outcome.error }, seconds);
      case 'transient':
        return this.retryLater(lease, outcome.error, outcome.cause);
      case 'stopped':
        return this.stopped(lease, outcome.reason);
    }
  }

  private async record(lease: Lease, outcome: { result: JobResult } | { error: ErrorBody }, seconds: number): Promise<Disposition> {
    const written = await this.deps.leases.finish(lease, outcome);
    if (written === undefined) { return 'requeue'; }
    const { log, progress } = lease;
    if (!written) {
      log.info({ seconds }, 'outcome discarded: the job was cancelled or taken over by a newer attempt');
      return 'ack';
    }
    if ('result' in outcome) { log.info({ rows: outcome.result.rows, seconds, bytes: progress.bytesRead, written }, 'job succeeded'); }
    else { log.info({ error: outcome.error, seconds, written }, 'job failed'); }
    this.deps.metrics?.finished(outcome, seconds, progress.bytesRead);
    return this.archived(lease.jobId, log);
  }

  private async retryLater(lease: Lease, error: ErrorBody, cause: unknown): Promise<Disposition> {
    lease.log.warn({ err: cause }, 'job failed transiently; it will be retried');
    await this.deps.leases.release(lease, error);
    await pause(retryDelay(lease.attempt, { baseMs: this.options.retryBackoffMs, maxMs: MAX_RETRY_BACKOFF_MS }), this.deps.stopping);
    return 'requeue';
  }

  private async stopped(lease: Lease, reason: StopReason): Promise<Disposition> {
    if (reason === 'cancelled') {
      this.deps.leases.drop(lease);
      lease.log.info('job stopped: cancelled or taken over');
      return 'ack';
    }
    // Shutdown or a lost channel: hand the job back for the queue to deliver again.
    await this.deps.leases.release(lease);
    return 'requeue';
  }

  /** A message past the delivery limit: the job fails with the last transient error, or DELIVERY_LIMIT. */
  async deadLettered(job: JobMessage, reason: string): Promise<Disposition> {
    const { store, logger, metrics, stopping } = this.deps;
    const log = logger.child({ jobId: job.id });
    const error = { code: 'DELIVERY_LIMIT', message: `the job was delivered too many times without finishing (${reason})` };
    const state = await untilStored(() => store.failDeadLettered(job.id, error), stopping, log);
    if (state === undefined) { return 'requeue'; }
    log.warn({ reason, state }, 'job dead-lettered');
    if (state === 'ended') { metrics?.deadLettered.inc(); }
    return this.archived(job.id, log);
  }

  /** Ack once the finished job is in the results archive; requeue when it could not be written (its redelivery writes it). */
  private async archived(id: string, log: Logger): Promise<Disposition> {
    return (await this.deps.archiver.archive(id, log)) ? 'ack' : 'requeue';
  }
}
