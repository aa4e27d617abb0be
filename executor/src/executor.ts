import {
  decodeMessage,
  parseLocation,
  type Broker,
  type Config,
  type JobMessage,
  type JobResult,
  type JobStore,
  type Logger,
  type ResultsArchive,
  type ReadLimits,
  type Storage,
} from '@decisum/shared';
import { Archiver } from './archiving';
import { sumLocation } from './compute';
import { QueueConsumer, type Delivery } from './consumer';
import { LeaseManager, type Lease, type StopReason } from './lease';
import type { ExecutorMetrics } from './metrics';
import { OutcomeHandler, classify, type Disposition } from './outcome';
import { JobRestorer } from './restore';
import { Slots } from './slots';

export interface ExecutorOptions {
  /** Jobs claimed and summed at once. */
  concurrency: number;
  /** Messages held at once (the channel's prefetch), at least concurrency: the rest wait, unclaimed, for a slot. */
  prefetch: number;
  threads: number;
  heartbeatMs: number;
  /** Base delay before a transiently failed job goes back to the queue. */
  retryBackoffMs: number;
  /** Bounds of one job's read: summed columns and header bytes. */
  limits: ReadLimits;
  /** The built worker module, for a process that runs the TypeScript sources (tests). */
  workerEntry?: string;
}

export function executorOptions(config: Config): ExecutorOptions {
  return {
    concurrency: config.executor.concurrency,
    prefetch: config.executor.prefetch,
    threads: config.executor.threads,
    heartbeatMs: config.jobs.heartbeatMs,
    retryBackoffMs: config.executor.retryBackoffMs,
    limits: config.executor.limits,
  };
}

export interface ExecutorDeps {
  store: JobStore;
  broker: Broker;
  storage: Storage;
  /** Every finished job is written here before its message is acked. */
  archive: ResultsArchive;
  logger: Logger;
  metrics?: ExecutorMetrics;
}

/**
 * Takes jobs from the queue and runs them: claim a lease, sum the file, record the outcome, then
 * settle the message. Acks only after the outcome is in Redis; an attempt that was overtaken
 * (cancelled, or claimed again after this executor's lease lapsed) writes nothing.
 */
export class Executor {
  /** Each job in work, with the controller that hands it back on shutdown. */
  private readonly running = new Map<Promise<void>, AbortController>();
  private readonly stopping = new AbortController();
  private readonly leases: LeaseManager;
  private readonly outcomes: OutcomeHandler;
  private readonly consumer: QueueConsumer;
  private readonly summing: Slots;

  constructor(
    private readonly deps: ExecutorDeps,
    private readonly options: ExecutorOptions,
  ) {
    const { store, archive, logger, metrics } = deps;
    const archiver = new Archiver({ store, archive, metrics });
    const restorer = new JobRestorer({ store, archive, metrics });
    this.leases = new LeaseManager({ store, restorer, archiver, logger }, { heartbeatMs: options.heartbeatMs }, this.stopping.signal);
    this.outcomes = new OutcomeHandler(
      { store, leases: this.leases, archiver, logger, metrics, stopping: this.stopping.signal },
      { retryBackoffMs: options.retryBackoffMs },
    );
    this.summing = new Slots(options.concurrency);
    this.consumer = new QueueConsumer(deps.broker, options.prefetch, { job: (d) => this.onJob(d), dead: (d) => this.onDead(d) }, logger);
  }

  async start(): Promise<void> {
    this.leases.start();
    await this.consumer.start();
  }

  private async onJob(delivery: Delivery): Promise<void> {
    const { logger, metrics } = this.deps;
    const job = decodeMessage(delivery.content);
    if (!job) {
      logger.error({ content: delivery.content.toString('utf8', 0, 200) }, 'poison message: not a job; dead-lettering it');
      metrics?.poison.inc();
      return delivery.settle('reject');
    }
    const log = logger.child({ jobId: job.id });
    const shutdown = new AbortController();
    const done = this.run(job, AbortSignal.any([shutdown.signal, delivery.lost]), log)
      .catch((err: unknown): Disposition => {
        log.error({ err }, 'unexpected executor failure; the message goes back to the queue');
        return 'requeue';
      })
      .then((how) => delivery.settle(how));
    this.running.set(done, shutdown);
    await done;
    this.running.delete(done);
  }

  /**
   * One delivery of a job: wait for a slot, claim it, sum the file, give the slot to the next job,
   * then record what came of it (the Redis write, the archive and the ack overlap the next sums).
   */
  private async run(job: JobMessage, stop: AbortSignal, log: Logger): Promise<Disposition> {
    // Not claimed while it waits: the job stays queued, and a shutdown hands it back at once.
    if (!(await this.summing.take(stop))) { return 'requeue'; }
    let lease: Lease;
    let computed: Awaited<ReturnType<Executor['compute']>>;
    let started: number;
    try {
      const claimed = await this.leases.claim(job, stop, log);
      if (typeof claimed === 'string') { return claimed; }
      lease = claimed;
      log.info({ attempt: lease.attempt, file: job.file }, 'job started');
      started = Date.now();
      computed = await this.compute(job, lease, log);
    } finally {
      this.summing.release();
    }
    return this.outcomes.settle(lease, classify(computed, lease.signal), (Date.now() - started) / 1000);
  }

  private async compute(job: JobMessage, lease: Lease, log: Logger): Promise<{ result: JobResult } | { err: unknown }> {
    const { storage, metrics } = this.deps;
    try {
      const result = await sumLocation(parseLocation(job.file), job.options, {
        storage,
        threads: this.options.threads,
        limits: this.options.limits,
        workerEntry: this.options.workerEntry,
        signal: lease.signal,
        onProgress: (p) => lease.report(p),
        onRetry: (info) => {
          metrics?.storageRetries.inc();
          log.warn({ attempt: info.attempt, offset: info.offset, delayMs: info.delayMs, err: info.error }, 'storage read retried');
        },
      });
      lease.report({ ...lease.progress, rows: result.rows });
      return { result };
    } catch (err) {
      return { err };
    }
  }

  private async onDead(delivery: Delivery): Promise<void> {
    const job = decodeMessage(delivery.content);
    if (!job) {
      this.deps.logger.error({ content: delivery.content.toString('utf8', 0, 200) }, 'dropped a dead-lettered poison message');
      return delivery.settle('ack');
    }
    const reason = delivery.headers['x-first-death-reason'];
    delivery.settle(await this.outcomes.deadLettered(job, typeof reason === 'string' ? reason : 'rejected'));
  }

  /** Stops taking jobs, lets running ones finish for graceMs, then hands the rest back. */
  async stop(graceMs: number): Promise<void> {
    await this.consumer.stop();
    this.summing.close(); // jobs still waiting for a slot go back to the queue now
    const pending = [...this.running.keys()];
    this.deps.logger.info({ running: pending.length, graceMs }, 'stopping: no new jobs; waiting for running ones');
    const timer = setTimeout(() => {
      this.stopping.abort();
      for (const shutdown of this.running.values()) { shutdown.abort('shutdown' satisfies StopReason); }
    }, graceMs);
    await Promise.all(pending);
    clearTimeout(timer);
    this.stopping.abort();
    this.leases.close();
    await this.consumer.close();
  }
}
