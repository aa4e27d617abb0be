import { isDurableCopy, type JobMessage, type JobStore, type Logger, type ResultsArchive } from '@decisum/shared';
import type { ExecutorMetrics } from './metrics';

/** What became of a job Redis has no record of: recorded again (or found recorded by another), or gone for good. */
export type Recovery = 'restored' | 'exists' | 'gone';

export interface RestorerDeps {
  store: JobStore;
  archive: ResultsArchive;
  metrics?: Pick<ExecutorMetrics, 'jobsRestored'>;
}

/**
 * Records again, from its queue message, a job Redis lost: only when Redis's epoch changed since the
 * message was made (same epoch: the job expired or was removed, and the message is dropped as
 * before) and the results archive does not hold it finished (it ran already; it is not run twice).
 */
export class JobRestorer {
  constructor(private readonly deps: RestorerDeps) {}

  /** With `running`, the record comes back held by that attempt, which goes on and writes its outcome. */
  async recover(message: JobMessage, log: Logger, running?: { attempt: number }): Promise<Recovery> {
    if (!isDurableCopy(message)) {
      log.warn('message for an unknown or expired job (it carries no copy of the job); dropping it');
      return 'gone';
    }
    const archived = await this.deps.archive.get(message.id);
    if (archived) {
      log.info({ status: archived.status }, 'job missing from redis but finished in the results archive; not running it again');
      return 'gone';
    }
    const outcome = await this.deps.store.restore(message, running);
    if (outcome === 'same-epoch') {
      log.warn('message for an unknown or expired job; dropping it');
      return 'gone';
    }
    if (outcome === 'restored') {
      this.deps.metrics?.jobsRestored.inc();
      log.error({ epoch: message.epoch, attempt: running?.attempt }, 'job restored from its queue message: redis had lost it');
    }
    return outcome;
  }
}
