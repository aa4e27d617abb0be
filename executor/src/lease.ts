import { pause, type ErrorBody, type JobMessage, type JobResult, type JobStore, type Logger, type Progress } from '@decisum/shared';
import type { Archiver } from './archiving';
import type { Disposition } from './outcome';
import { untilStored } from './persist';
import type { JobRestorer } from './restore';

/** Why a job stopped before its outcome: its lease was lost (cancelled, or taken over), the executor is shutting down, or the channel its message came on closed. */
export type StopReason = 'cancelled' | 'shutdown' | 'channel-lost';

export type JobOutcome = { result: JobResult } | { error: ErrorBody };

/** One attempt's hold on a running job, renewed by the LeaseManager while the job runs. */
export class Lease {
  private readonly lost = new AbortController();
  /** Aborts when the job must stop: the lease was lost ('cancelled'), or the caller's signal aborted. */
  readonly signal: AbortSignal;
  private current: Progress = { bytesRead: 0, bytesTotal: 0, rows: 0 };

  /** A renewal found the record gone and is recording it again (see LeaseManager.reclaim). */
  reclaiming = false;

  constructor(
    /** The job's message: the durable copy the record is restored from should Redis lose it. */
    readonly message: JobMessage,
    readonly attempt: number,
    readonly log: Logger,
    stop: AbortSignal,
    private readonly onSizeKnown: (lease: Lease) => void,
  ) {
    this.signal = AbortSignal.any([stop, this.lost.signal]);
  }

  get jobId(): string {
    return this.message.id;
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

export interface LeaseDeps {
  store: JobStore;
  restorer: JobRestorer;
  archiver: Archiver;
  logger: Logger;
}

/** Times a job may be recorded again in one claim: Redis losing its data twice within a claim is not worth a third. */
const MAX_RESTORES = 2;

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

  private readonly store: JobStore;
  private readonly logger: Logger;

  constructor(
    private readonly deps: LeaseDeps,
    private readonly options: LeaseOptions,
    /** Aborted when the executor gives up waiting for Redis on shutdown. */
    private readonly stopping: AbortSignal,
  ) {
    this.store = deps.store;
    this.logger = deps.logger;
  }

  start(): void {
    this.schedule();
  }

  /** Stops renewing; a renewal in flight is not waited for (Redis may be down at shutdown). */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.sizeTimer);
  }

  /**
   * A lease on a new attempt, or what to do with the message when there is nothing to run: ack (the job
   * is finished, gone, or running on a live executor) or requeue (`stop` aborted, or the archive write
   * of a finished job failed). A job Redis lost is recorded again from the message first.
   */
  async claim(message: JobMessage, stop: AbortSignal, log: Logger): Promise<Lease | Disposition> {
    let firstLease: number | undefined;
    let restores = 0;
    for (;;) {
      const c = await untilStored(() => this.store.claim(message.id), this.stopping, log);
      if (c === undefined) { return 'requeue'; }
      switch (c.kind) {
        case 'claimed': {
          const lease = new Lease(message, c.attempt, log, stop, (l) => this.sizeLearnt(l));
          this.held.add(lease);
          return lease;
        }
        case 'missing': {
          const recovered = restores++ < MAX_RESTORES ? await untilStored(() => this.deps.restorer.recover(message, log), this.stopping, log) : 'gone';
          if (recovered === undefined) { return 'requeue'; }
          if (recovered === 'gone') { return 'ack'; }
          continue;
        }
        case 'finished':
          log.info({ status: c.status }, 'redelivered job already finished; acking without work');
          // Its archive write may be what failed last time: write it again before the ack.
          return (await this.deps.archiver.archive(message.id, log)) ? 'ack' : 'requeue';
        case 'busy':
          // Another executor holds a lease. If it renews the lease, it is alive and this message is a duplicate.
          if (firstLease !== undefined && c.leaseUntil > firstLease) {
            log.info('job is running on a live executor; dropping the duplicate message');
            return 'ack';
          }
          firstLease ??= c.leaseUntil;
          await pause(Math.min(this.options.heartbeatMs, Math.max(50, c.leaseUntil - Date.now() + 50)), stop);
          if (stop.aborted) { return 'requeue'; }
      }
    }
  }

  /**
   * Writes the outcome once: true when written, false when a cancel or a newer attempt got there first,
   * undefined when Redis could not be reached before shutdown. A record Redis lost meanwhile is
   * recorded again as this attempt's, and the outcome written to it: a computed result is kept.
   */
  async finish(lease: Lease, outcome: JobOutcome): Promise<boolean | undefined> {
    this.held.delete(lease);
    const write = () => untilStored(() => this.store.finish(lease.jobId, lease.attempt, outcome, lease.progress), this.stopping, lease.log);
    const written = await write();
    if (written !== false || !(await this.restoreHeld(lease))) { return written; }
    return write();
  }

  /** Records the job again as held by this lease's attempt, if Redis lost it (and only then). */
  private async restoreHeld(lease: Lease): Promise<boolean> {
    const recovered = await untilStored(
      async () => ((await this.store.get(lease.jobId)) ? 'exists' : this.deps.restorer.recover(lease.message, lease.log, { attempt: lease.attempt })),
      this.stopping,
      lease.log,
    );
    return recovered === 'restored';
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

  private stopHolding(lease: Lease, state: string): void {
    lease.log.info({ state }, 'job no longer ours; stopping');
    this.held.delete(lease);
    lease.lose();
  }

  /** A running job whose record vanished: kept running when Redis lost it (the record comes back as this attempt's), stopped otherwise. */
  private async reclaim(lease: Lease): Promise<void> {
    lease.reclaiming = true;
    try {
      if (await this.restoreHeld(lease)) { return; }
      if (this.held.has(lease)) { this.stopHolding(lease, 'missing'); }
    } finally {
      lease.reclaiming = false;
    }
  }

  private async renew(leases: Lease[]): Promise<void> {
    if (leases.length === 0) { return; }
    try {
      const states = await this.store.renew(leases.map((l) => ({ id: l.jobId, attempt: l.attempt, progress: l.progress })));
      states.forEach((state, i) => {
        const lease = leases[i];
        // A lease finished or released meanwhile is no longer renewed: what the store says of it is old news.
        if (state === 'ok' || !this.held.has(lease) || lease.reclaiming) { return; }
        if (state === 'missing') {
          void this.reclaim(lease);
          return;
        }
        this.stopHolding(lease, state);
      });
    } catch (err) {
      this.logger.warn({ err, jobIds: leases.map((l) => l.jobId) }, 'lease renewal failed; leases may lapse');
    }
  }
}
