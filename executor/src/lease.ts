import { pause, type ErrorBody, type JobResult, type JobStore, type Logger, type Progress } from '@decisum/shared';
import { untilStored } from './persist';

/** Why a job stopped before its outcome: its lease was lost (cancelled, or taken over), the executor is shutting down, or the channel its message came on closed. */
export type StopReason = 'cancelled' | 'shutdown' | 'channel-lost';

export type JobOutcome = { result: JobResult } | { error: ErrorBody };

/** One attempt's hold on a running job, renewed by the LeaseManager while the job runs. */
export class Lease {
  private readonly lost = new AbortController();
  /** Aborts when the job must stop: the lease was lost ('cancelled'), or the caller's signal aborted. */
  readonly signal: AbortSignal;
  private current: Progress = { bytesRead: 0, bytesTotal: 0, rows: 0 };

  constructor(
    readonly jobId: string,
    readonly attempt: number,
    readonly log: Logger,
    stop: AbortSignal,
    private readonly onSizeKnown: (lease: Lease) => void,
  ) {
    this.signal = AbortSignal.any([stop, this.lost.signal]);
  }

  get progress(): Progress {
    return this.current;
  }

  /** Records progress for the next renewal; the file's size is written as soon as it is known, so a client sees how far there is to go. */
  report(progress: Progress): void {
    const sizeKnown = this.current.bytesTotal === 0 && progress.bytesTotal > 0;
    this.current = progress;
    if (sizeKnown) { this.onSizeKnown(this); }
  }

  /** The store no longer grants this attempt the job. */
  lose(): void {
    this.lost.abort('cancelled' satisfies StopReason);
  }
}

export interface LeaseOptions {
  /** How often every held lease is renewed. */
  heartbeatMs: number;
}

/**
 * A size learnt is written this long after, with every other size learnt meanwhile, in one round
 * trip: a job of a few milliseconds has finished by then (its outcome carries its progress) and
 * costs no write of its own.
 */
const SIZE_WRITE_DELAY_MS = 20;

/**
 * Claims jobs and holds their leases: one timer renews every lease this executor holds in one Redis
 * round trip (writing each job's progress with it), and a lease the store no longer grants stops its
 * job. The outcome is written fenced by the attempt number, so a stale attempt writes nothing.
 */
export class LeaseManager {
  private readonly held = new Set<Lease>();
  private timer?: NodeJS.Timeout;
  /** Leases whose size was learnt since the last size write. */
  private readonly sized = new Set<Lease>();
  private sizeTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly store: JobStore,
    private readonly options: LeaseOptions,
    /** Aborted when the executor gives up waiting for Redis on shutdown. */
    private readonly stopping: AbortSignal,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.schedule();
  }

  /** Stops renewing; a renewal in flight is not waited for (Redis may be down at shutdown). */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.sizeTimer);
  }

  /** A lease on a new attempt; undefined when there is nothing to run, or `stop` aborted the wait for another executor's lease. */
  async claim(jobId: string, stop: AbortSignal, log: Logger): Promise<Lease | undefined> {
    let firstLease: number | undefined;
    for (;;) {
      const c = await untilStored(() => this.store.claim(jobId), this.stopping, log);
      if (c === undefined) { return undefined; }
      switch (c.kind) {
        case 'claimed': {
          const lease = new Lease(jobId, c.attempt, log, stop, (l) => this.sizeLearnt(l));
          this.held.add(lease);
          return lease;
        }
        case 'missing':
          log.warn('message for an unknown or expired job; dropping it');
          return undefined;
        case 'finished':
          log.info({ status: c.status }, 'redelivered job already finished; acking without work');
          return undefined;
        case 'busy':
          // Another executor holds a lease. If it renews the lease, it is alive and this message is a duplicate.
          if (firstLease !== undefined && c.leaseUntil > firstLease) {
            log.info('job is running on a live executor; dropping the duplicate message');
            return undefined;
          }
          firstLease ??= c.leaseUntil;
          await pause(Math.min(this.options.heartbeatMs, Math.max(50, c.leaseUntil - Date.now() + 50)), stop);
          if (stop.aborted) { return undefined; }
      }
    }
  }

  /** Writes the outcome once: true when written, false when a cancel or a newer attempt got there first, undefined when Redis could not be reached before shutdown. */
  async finish(lease: Lease, outcome: JobOutcome): Promise<boolean | undefined> {
    this.held.delete(lease);
    return untilStored(() => this.store.finish(lease.jobId, lease.attempt, outcome, lease.progress), this.stopping, lease.log);
  }

  /** Hands the job back to the queue, with the error that made this attempt fail, if any. */
  async release(lease: Lease, lastError?: ErrorBody): Promise<void> {
    this.held.delete(lease);
    await untilStored(() => this.store.release(lease.jobId, lease.attempt, lastError), this.stopping, lease.log);
  }

  /** Stops renewing a lease that is no longer this attempt's. */
  drop(lease: Lease): void {
    this.held.delete(lease);
  }

  /** Writes the size soon, with the others learnt meanwhile; one timer for all of them. */
  private sizeLearnt(lease: Lease): void {
    this.sized.add(lease);
    this.sizeTimer ??= setTimeout(() => {
      this.sizeTimer = undefined;
      const leases = [...this.sized].filter((l) => this.held.has(l));
      this.sized.clear();
      void this.renew(leases);
    }, SIZE_WRITE_DELAY_MS);
  }

  private schedule(): void {
    if (this.closed) { return; }
    this.timer = setTimeout(() => void this.renew([...this.held]).finally(() => this.schedule()), this.options.heartbeatMs);
  }

  private async renew(leases: Lease[]): Promise<void> {
    if (leases.length === 0) { return; }
    try {
      const states = await this.store.renew(leases.map((l) => ({ id: l.jobId, attempt: l.attempt, progress: l.progress })));
      states.forEach((state, i) => {
        const lease = leases[i];
        // A lease finished or released meanwhile is no longer renewed: what the store says of it is old news.
        if (state === 'ok' || !this.held.has(lease)) { return; }
        lease.log.info({ state }, 'job no longer ours; stopping');
        this.held.delete(lease);
        lease.lose();
      });
    } catch (err) {
      this.logger.warn({ err, jobIds: leases.map((l) => l.jobId) }, 'lease renewal failed; leases may lapse');
    }
  }
}
