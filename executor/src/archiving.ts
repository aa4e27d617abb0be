import { isFinal, pause, retryDelay, type JobStore, type Logger, type ResultsArchive } from '@decisum/shared';
import type { ExecutorMetrics } from './metrics';

export interface ArchiverDeps {
  store: JobStore;
  archive: ResultsArchive;
  metrics?: Pick<ExecutorMetrics, 'archiveWrites'>;
}

const TRIES = 3;
const BACKOFF = { baseMs: 200, maxMs: 2000 };

/**
 * Writes each finished job to the results archive after its outcome is in Redis and before its
 * message is acked. A write that keeps failing sends the message back to the queue (requeue): its
 * redelivery finds the job finished and archives it then, so no result is acked unarchived.
 */
export class Archiver {
  constructor(private readonly deps: ArchiverDeps) {}

  /** True once the job is in the archive (or has nothing to archive: not final, or gone); false to requeue. */
  async archive(id: string, log: Logger): Promise<boolean> {
    const job = await this.deps.store.get(id);
    if (!job || !isFinal(job.status)) { return true; }
    for (let attempt = 1; ; attempt++) {
      try {
        await this.deps.archive.put(job);
        this.deps.metrics?.archiveWrites.inc({ result: 'ok' });
        return true;
      } catch (err) {
        this.deps.metrics?.archiveWrites.inc({ result: 'error' });
        log.warn({ err, attempt, archive: this.deps.archive.where }, 'results archive write failed');
        if (attempt === TRIES) { return false; }
        await pause(retryDelay(attempt, BACKOFF));
      }
    }
  }
}
