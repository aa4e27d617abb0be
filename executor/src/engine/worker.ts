import { parentPort, workerData } from 'node:worker_threads';
import { AppError, LocalFileSync, type LocalVersion, type ReadPolicy } from '@decisum/shared/local-file';
import { Engine } from './engine';
import { CsvError } from './errors';
import type { Layout } from './header';
import type { PartialSums } from './sums';

/*
 * One byte range of a local file, summed in a worker thread. The worker opens the file itself from
 * the version its parent verified (a Storage object cannot cross threads) and reads it with the
 * same policy; it loads only the engine and the local file reader.
 */

export interface RangeTask {
  file: LocalVersion;
  policy: ReadPolicy;
  /** Offset of the first record this range takes (a guess for all but the first range). */
  start: number;
  /** Records starting at or after this offset belong to the next range; absent for the last. */
  end?: number;
  layout: Layout;
  maxRecordBytes: number;
  bufferBytes: number;
}

export type RangeMessage =
  | { type: 'progress'; bytesRead: number; rows: number }
  | { type: 'retry'; attempt: number; offset: number; delayMs: number; code?: string; message: string }
  | { type: 'done'; partial: PartialSums; boundary: number }
  | { type: 'error'; code: CsvError['code']; row: number | undefined; column: string | undefined; reason: string; records: number }
  | { type: 'failed'; code: AppError['code']; message: string; status: number; permanent: boolean }
  | { type: 'crash'; message: string };

const PROGRESS_BYTES = 32 << 20;

export function sumRange(task: RangeTask, post: (m: RangeMessage) => void): void {
  const engine = Engine.forRange({
    layout: task.layout,
    maxRecordBytes: task.maxRecordBytes,
    bufferBytes: task.bufferBytes,
    stopAt: task.end === undefined ? undefined : task.end - task.start,
  });
  let file: LocalFileSync | undefined;
  try {
    file = new LocalFileSync(task.file, task.policy, (r) => {
      const err = r.error as NodeJS.ErrnoException;
      post({ type: 'retry', attempt: r.attempt, offset: r.offset, delayMs: r.delayMs, code: err?.code, message: String(err?.message ?? err) });
    });
    let pos = task.start;
    let reported = 0;
    while (!engine.done) {
      const n = file.read(engine.space(), pos);
      if (n === 0) { break; }
      pos += n;
      engine.commit(n);
      if (pos - task.start - reported >= PROGRESS_BYTES) {
        post({ type: 'progress', bytesRead: pos - task.start - reported, rows: engine.rows });
        reported = pos - task.start;
      }
    }
    engine.end();
    file.verify();
    post({ type: 'progress', bytesRead: pos - task.start - reported, rows: engine.rows });
    post({ type: 'done', partial: engine.partial(), boundary: task.start + engine.boundary });
  } catch (err) {
    if (err instanceof CsvError) {
      post({ type: 'error', code: err.code, row: err.row, column: err.column, reason: err.reason, records: engine.records });
    } else if (err instanceof AppError) {
      post({ type: 'failed', code: err.code, message: err.message, status: err.status, permanent: err.permanent });
    } else {
      post({ type: 'crash', message: err instanceof Error ? err.message : String(err) });
    }
  } finally {
    file?.close();
  }
}

const task = (workerData as { decisumRange?: RangeTask } | null)?.decisumRange;
if (parentPort && task) {
  const port = parentPort;
  sumRange(task, (m) => port.postMessage(m));
}
