import { closeSync, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { CsvError, Engine, type Layout, type PartialSums } from './core';
import { readAtSync } from './reader';

/*
 * One byte range of a file, summed in a worker thread. Imports only the pure core so it
 * loads the same under ts-node (tests) and as compiled JS.
 */

export interface RangeTask {
  path: string;
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
  | { type: 'done'; partial: PartialSums; boundary: number }
  | { type: 'error'; code: CsvError['code']; row: number | undefined; column: string | undefined; reason: string; records: number }
  | { type: 'crash'; message: string; code?: string };

const PROGRESS_BYTES = 32 << 20;

export function sumRange(task: RangeTask, post: (m: RangeMessage) => void): void {
  const engine = new Engine({
    step: 1,
    offset: 0,
    header: false,
    maxRecordBytes: task.maxRecordBytes,
    layout: task.layout,
    stopAt: task.end === undefined ? undefined : task.end - task.start,
    bufferBytes: task.bufferBytes,
  });
  const fd = openSync(task.path, 'r');
  try {
    let pos = task.start;
    let reported = 0;
    while (!engine.done) {
      const n = readAtSync(fd, engine.space(), pos);
      if (n === 0) { break; }
      pos += n;
      engine.commit(n);
      if (pos - task.start - reported >= PROGRESS_BYTES) {
        post({ type: 'progress', bytesRead: pos - task.start - reported, rows: engine.rows });
        reported = pos - task.start;
      }
    }
    engine.end();
    post({ type: 'progress', bytesRead: pos - task.start - reported, rows: engine.rows });
    post({ type: 'done', partial: engine.partial(), boundary: task.start + engine.boundary });
  } catch (err) {
    if (err instanceof CsvError) {
      post({ type: 'error', code: err.code, row: err.row, column: err.column, reason: err.reason, records: engine.records });
    } else {
      const e = err as NodeJS.ErrnoException;
      post({ type: 'crash', message: e?.message ?? String(err), code: e?.code });
    }
  } finally {
    closeSync(fd);
  }
}

const task = (workerData as { decisumRange?: RangeTask } | null)?.decisumRange;
if (parentPort && task) {
  const port = parentPort;
  sumRange(task, (m) => port.postMessage(m));
}
