import type { Broker, JobStore, Logger } from '@decisum/shared';
import { publishRecorded } from './submit';

/**
 * The outbox: a job recorded in Redis whose publication was never confirmed (the API died between
 * the two, or Redis missed the confirmation) is published here. A duplicate message is harmless:
 * executors claim jobs in Redis and ack messages for finished or running jobs without work.
 */
export class OutboxSweeper {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly deps: { store: JobStore; broker: Pick<Broker, 'publish' | 'connected'>; logger: Logger },
    private readonly options: { intervalMs: number; graceMs: number },
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.sweep()
        .then(() => undefined)
        .catch((err: unknown) => this.deps.logger.warn({ err }, 'outbox sweep failed'))
        .finally(() => (this.running = undefined));
    }, this.options.intervalMs);
    this.timer.unref();
  }

  /** Publishes every overdue job once; returns how many. */
  async sweep(): Promise<number> {
    const { store, broker, logger } = this.deps;
    if (!broker.connected) { return 0; }
    let published = 0;
    for (const id of await store.unpublished(this.options.graceMs)) {
      const recorded = await store.copy(id);
      if (recorded?.job.status !== 'queued') {
        await store.markPublished(id);
        continue;
      }
      const log = logger.child({ jobId: id });
      await publishRecorded(this.deps, recorded.message, log);
      published++;
      log.info('published a job from the outbox');
    }
    return published;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
