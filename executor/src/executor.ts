import type { Channel, ConsumeMessage } from 'amqplib';
import {
  decodeMessage,
  isPermanent,
  parseLocation,
  toErrorBody,
  type Broker,
  type Config,
  type ErrorBody,
  type JobMessage,
  type JobResult,
  type JobStore,
  type Logger,
  type Progress,
  type Storage,
} from '@decisum/shared';
import { sumLocation } from './compute';
import type { ExecutorMetrics } from './metrics';

export interface ExecutorOptions {
  concurrency: number;
  threads: number;
  heartbeatMs: number;
  /** Base delay before a transiently failed job goes back to the queue. */
  retryBackoffMs: number;
  /** Test hook: crash the process right after the result is written, before the ack. */
  crashAfterWrite?: boolean;
  /** The built worker module, for a process that runs the TypeScript sources (tests). */
  workerEntry?: string;
}

export function executorOptions(config: Config): ExecutorOptions {
  return {
    concurrency: config.executor.concurrency,
    threads: config.executor.threads,
    heartbeatMs: config.jobs.heartbeatMs,
    retryBackoffMs: config.executor.retryBackoffMs,
    crashAfterWrite: config.executor.crashAfterWrite,
  };
}

export interface ExecutorDeps {
  store: JobStore;
  broker: Broker;
  storage: Storage;
  logger: Logger;
  metrics?: ExecutorMetrics;
}

type StopReason = 'cancelled' | 'shutdown' | 'channel-lost';

interface Running {
  abort: AbortController;
  done: Promise<void>;
  channel: Channel;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

/**
 * Takes jobs from the queue and runs them. Acks only after the outcome is in Redis; a job whose
 * attempt was overtaken (cancelled, or claimed again after this executor's lease lapsed) writes nothing.
 */
export class Executor {
  private readonly running = new Set<Running>();
  private readonly consumers = new Map<Channel, string[]>();
  private readonly stopping = new AbortController();

  constructor(
    private readonly deps: ExecutorDeps,
    private readonly options: ExecutorOptions,
  ) {}

  async start(): Promise<void> {
    const { broker, logger } = this.deps;
    await broker.use(async (conn) => {
      const ch = await conn.createChannel();
      ch.on('error', (err: Error) => logger.warn({ err }, 'amqp consumer channel error'));
      ch.on('close', () => this.channelLost(ch));
      await ch.prefetch(this.options.concurrency);
      const jobs = await ch.consume(broker.topology.jobs, (msg) => msg && void this.onJob(ch, msg), { noAck: false });
      const dead = await ch.consume(broker.topology.dead, (msg) => msg && void this.onDead(ch, msg), { noAck: false });
      this.consumers.set(ch, [jobs.consumerTag, dead.consumerTag]);
      logger.info({ queue: broker.topology.jobs, concurrency: this.options.concurrency }, 'consuming jobs');
    });
    await broker.start();
  }

  private channelLost(ch: Channel): void {
    this.consumers.delete(ch);
    // The broker hands these messages to someone else now; hand the jobs back so that someone can claim them.
    for (const r of this.running) { if (r.channel === ch) { r.abort.abort('channel-lost' satisfies StopReason); } }
  }

  private async onJob(ch: Channel, msg: ConsumeMessage): Promise<void> {
    const { logger } = this.deps;
    const job = decodeMessage(msg.content);
    if (!job) {
      logger.error({ content: msg.content.toString('utf8', 0, 200) }, 'poison message: not a job; dead-lettering it');
      this.deps.metrics?.poison.inc();
      return settle(ch, msg, 'reject');
    }
    const log = logger.child({ jobId: job.id });
    const abort = new AbortController();
    const done = this.process(ch, msg, job, abort, log).catch((err: unknown) => {
      log.error({ err }, 'unexpected executor failure; the message goes back to the queue');
      settle(ch, msg, 'requeue');
    });
    const entry = { abort, done, channel: ch };
    this.running.add(entry);
    await done;
    this.running.delete(entry);
  }

  private async process(ch: Channel, msg: ConsumeMessage, job: JobMessage, abort: AbortController, log: Logger) {
    const { store } = this.deps;
    const attempt = await this.claim(job.id, abort.signal, log);
    if (attempt === undefined) { return settle(ch, msg, abort.signal.aborted ? 'requeue' : 'ack'); }

    log.info({ attempt, file: job.file }, 'job started');
    const started = Date.now();
    let progress: Progress = { bytesRead: 0, bytesTotal: 0, rows: 0 };
    const heartbeat = setInterval(() => {
      store.heartbeat(job.id, attempt, progress).then(
        (state) => {
          if (state === 'ok') { return; }
          log.info({ state }, 'job no longer ours; stopping');
          abort.abort('cancelled' satisfies StopReason);
        },
        (err: unknown) => log.warn({ err }, 'heartbeat failed; lease may lapse'),
      );
    }, this.options.heartbeatMs);

    let outcome: { result: JobResult } | { error: ErrorBody } | undefined;
    let failure: unknown;
    try {
      const result = await sumLocation(parseLocation(job.file), job.options, {
        storage: this.deps.storage,
        threads: this.options.threads,
        workerEntry: this.options.workerEntry,
        signal: abort.signal,
        onProgress: (p) => (progress = p),
        onRetry: (info) => {
          this.deps.metrics?.storageRetries.inc();
          log.warn({ attempt: info.attempt, offset: info.offset, delayMs: info.delayMs, err: info.error }, 'storage read retried');
        },
      });
      outcome = { result };
      progress = { ...progress, rows: result.rows };
    } catch (err) {
      failure = err;
      // Our own abort surfaces as a permanent CANCELLED read error: that is a stop, not the job's outcome.
      if (isPermanent(err) && !abort.signal.aborted) { outcome = { error: toErrorBody(err) }; }
    } finally {
      clearInterval(heartbeat);
    }

    const reason = abort.signal.aborted ? (abort.signal.reason as StopReason) : undefined;
    if (reason === 'cancelled') {
      log.info('job stopped: cancelled or taken over');
      return settle(ch, msg, 'ack');
    }
    if (outcome) {
      const written = await this.untilStored(() => store.finish(job.id, attempt, outcome, progress), log);
      if (written === undefined) { return settle(ch, msg, 'requeue'); }
      if (this.options.crashAfterWrite) { process.kill(process.pid, 'SIGKILL'); }
      const seconds = (Date.now() - started) / 1000;
      if (!written) {
        log.info({ seconds }, 'outcome discarded: the job was cancelled or taken over by a newer attempt');
      } else if ('result' in outcome) {
        log.info({ rows: outcome.result.rows, seconds, bytes: progress.bytesRead, written }, 'job succeeded');
      } else {
        log.info({ error: outcome.error, seconds, written }, 'job failed');
      }
      if (written) { this.deps.metrics?.finished(outcome, seconds, progress.bytesRead); }
      return settle(ch, msg, 'ack');
    }

    // Transient, shutdown or lost channel: hand the job back and let the queue deliver it again.
    const lastError = reason ? undefined : toErrorBody(failure);
    if (!reason) { log.warn({ err: failure }, 'job failed transiently; it will be retried'); }
    await this.untilStored(() => store.release(job.id, attempt, lastError), log).catch(() => undefined);
    if (!reason) { await sleep(this.backoff(attempt), this.stopping.signal); }
    settle(ch, msg, 'requeue');
  }

  /** The attempt number once the job is ours; undefined when there is nothing to run. */
  private async claim(id: string, signal: AbortSignal, log: Logger): Promise<number | undefined> {
    let firstLease: number | undefined;
    for (;;) {
      const c = await this.untilStored(() => this.deps.store.claim(id), log);
      if (c === undefined) { return undefined; }
      switch (c.kind) {
        case 'claimed':
          return c.attempt;
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
          await sleep(Math.min(this.options.heartbeatMs, Math.max(50, c.leaseUntil - Date.now() + 50)), signal);
          if (signal.aborted) { return undefined; }
      }
    }
  }

  /** Retries a Redis write until it lands or the executor shuts down (then the message is redelivered). */
  private async untilStored<T>(fn: () => Promise<T>, log: Logger): Promise<T | undefined> {
    for (let i = 0; ; i++) {
      try {
        return await fn();
      } catch (err) {
        if (this.stopping.signal.aborted && i > 2) { return undefined; }
        if (i === 0) { log.warn({ err }, 'redis write failed; retrying'); }
        await sleep(Math.min(5000, 100 * 2 ** i));
      }
    }
  }

  private backoff(attempt: number): number {
    const base = this.options.retryBackoffMs * 2 ** (attempt - 1);
    return Math.min(30_000, base) * (0.5 + Math.random() / 2);
  }

  private async onDead(ch: Channel, msg: ConsumeMessage): Promise<void> {
    const job = decodeMessage(msg.content);
    if (job) {
      const reason = String(msg.properties.headers?.['x-first-death-reason'] ?? 'rejected');
      const state = await this.untilStored(
        () =>
          this.deps.store.failDeadLettered(job.id, {
            code: 'DELIVERY_LIMIT',
            message: `the job was delivered too many times without finishing (${reason})`,
          }),
        this.deps.logger,
      );
      if (state === undefined) { return settle(ch, msg, 'requeue'); }
      this.deps.logger.warn({ jobId: job.id, reason, state }, 'job dead-lettered');
      if (state === 'ended') { this.deps.metrics?.deadLettered.inc(); }
    } else {
      this.deps.logger.error({ content: msg.content.toString('utf8', 0, 200) }, 'dropped a dead-lettered poison message');
    }
    settle(ch, msg, 'ack');
  }

  /** Stops taking jobs, lets running ones finish for graceMs, then hands the rest back. */
  async stop(graceMs: number): Promise<void> {
    const { logger } = this.deps;
    for (const [ch, tags] of this.consumers) {
      for (const tag of tags) { await ch.cancel(tag).catch(() => undefined); }
    }
    const pending = [...this.running].map((r) => r.done);
    logger.info({ running: pending.length, graceMs }, 'stopping: no new jobs; waiting for running ones');
    const timer = setTimeout(() => {
      this.stopping.abort();
      for (const r of this.running) { r.abort.abort('shutdown' satisfies StopReason); }
    }, graceMs);
    await Promise.all(pending);
    clearTimeout(timer);
    this.stopping.abort();
    // A quorum queue drops an ack still in flight when the connection closes under it (RabbitMQ 3.10):
    // closing each channel first waits for the broker to take our last acks.
    for (const ch of [...this.consumers.keys()]) { await ch.close().catch(() => undefined); }
  }
}

function settle(ch: Channel, msg: ConsumeMessage, how: 'ack' | 'requeue' | 'reject'): void {
  try {
    if (how === 'ack') { ch.ack(msg); }
    else { ch.nack(msg, false, how === 'requeue'); }
  } catch {
    // The channel is gone: the broker has already put the message back.
  }
}

