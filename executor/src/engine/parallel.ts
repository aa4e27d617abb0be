import { open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { AppError, type JobResult } from '@decisum/shared';
import { CsvError, Engine, mergePartials, type Layout, type PartialSums } from './core';
import { engineConfig, toAppError, type EngineOptions } from './options';
import { readAt } from './reader';
import type { RangeMessage, RangeTask } from './worker';

export interface SumFileOptions extends EngineOptions {
  /** Worker threads to split the file across; 1 sums on the calling thread. */
  threads: number;
  signal?: AbortSignal;
  onProgress?: (p: { bytesRead: number; bytesTotal: number; rows: number }) => void;
  /** Files with fewer data bytes than this are summed on one thread; 32 MiB by default (tests lower it). */
  minParallelBytes?: number;
  /** Read buffer per thread; 1 MiB by default. */
  bufferBytes?: number;
}

const DEFAULT_MIN_PARALLEL = 32 << 20;
const DEFAULT_BUFFER = 1 << 20;

/*
 * Splitting: the main thread reads the header, then cuts the data into byte ranges that start
 * after a line feed. A line feed may sit inside a quoted field, so every range but the first
 * starts on a guess. Each worker reports where its own last record really ended (it parses
 * from a true record start if its guess was right); when that differs from the next range's
 * guess, the ranges from there on are summed again on one thread from the true boundary.
 * Quoted line breaks near a cut therefore cost time, never a wrong sum.
 */

interface RangeResult {
  start: number;
  outcome: RangeMessage;
}

function cancelled(signal: AbortSignal): AppError {
  return new AppError('CANCELLED', 'the job was cancelled', { status: 409, expected: true, permanent: true, cause: signal.reason });
}

/** Where worker code lives: the .ts source under ts-node/jest, compiled JS otherwise. */
function workerEntry(): { file: string; execArgv: string[]; env: NodeJS.ProcessEnv } {
  if (__filename.endsWith('.ts')) {
    return {
      file: path.join(__dirname, 'worker.ts'),
      execArgv: ['-r', 'ts-node/register/transpile-only'],
      // TypeScript 6 reports a missing rootDir as an error even when only transpiling.
      env: { ...process.env, TS_NODE_IGNORE_DIAGNOSTICS: process.env.TS_NODE_IGNORE_DIAGNOSTICS ?? '5011' },
    };
  }
  return { file: path.join(__dirname, 'worker.js'), execArgv: [], env: process.env };
}

export async function sumFile(absPath: string, options: SumFileOptions): Promise<JobResult> {
  const cfg = engineConfig(options);
  const signal = options.signal;
  if (signal?.aborted) { throw cancelled(signal); }
  const bytesTotal = (await stat(absPath)).size;
  const bufferBytes = options.bufferBytes ?? DEFAULT_BUFFER;
  const fh = await open(absPath, 'r');
  try {
    // The header, on this thread.
    const head = new Engine({ ...cfg, headerOnly: true, bufferBytes: Math.min(bufferBytes, 1 << 16) });
    let pos = 0;
    try {
      while (!head.done) {
        const n = await readAt(fh, head.space(), pos);
        if (n === 0) { break; }
        pos += n;
        head.commit(n);
      }
      head.end();
    } catch (err) {
      throw toAppError(err);
    }
    const layout = head.layout as Layout;
    const dataStart = head.boundary;
    const headRecords = head.records;

    let bytesRead = dataStart;
    const rowsBy = new Map<number, number>();
    const progress = (start: number, bytes: number, rows: number) => {
      bytesRead += bytes;
      rowsBy.set(start, rows);
      let total = 0;
      for (const r of rowsBy.values()) { total += r; }
      options.onProgress?.({ bytesRead: Math.min(bytesRead, bytesTotal), bytesTotal, rows: total });
    };

    const threads = Math.max(1, Math.floor(options.threads));
    const single = threads === 1 || bytesTotal - dataStart < (options.minParallelBytes ?? DEFAULT_MIN_PARALLEL);
    if (single) {
      const part = await sumRangeHere(fh, dataStart, layout, cfg.maxRecordBytes, bufferBytes, headRecords, signal, (b, r) => progress(dataStart, b, r));
      return mergePartials(layout, [part]);
    }

    // Guess range starts: just after the first line feed at or after each cut.
    const starts = [dataStart];
    const probe = Buffer.allocUnsafe(1 << 16);
    for (let i = 1; i < threads; i++) {
      let at = Math.max(dataStart + Math.floor(((bytesTotal - dataStart) * i) / threads) - 1, starts[starts.length - 1]);
      let found = bytesTotal;
      while (at < bytesTotal) {
        const n = await readAt(fh, probe, at);
        if (n === 0) { break; }
        const lf = probe.subarray(0, n).indexOf(10);
        if (lf >= 0) {
          found = at + lf + 1;
          break;
        }
        at += n;
      }
      if (found < bytesTotal && found > starts[starts.length - 1]) { starts.push(found); }
    }
    const tasks: RangeTask[] = starts.map((start, i) => ({
      path: absPath,
      start,
      end: starts[i + 1],
      layout,
      maxRecordBytes: cfg.maxRecordBytes,
      bufferBytes,
    }));
    const results = await runWorkers(tasks, signal, progress);

    // Verify the guesses in file order; the first range's start is known to be right.
    const parts: PartialSums[] = [];
    let records = headRecords;
    for (let i = 0; i < results.length; i++) {
      const { start, outcome } = results[i];
      if (outcome.type === 'error') {
        const row = outcome.row === undefined ? undefined : records + outcome.row;
        throw toAppError(new CsvError(outcome.code, row, outcome.column, outcome.reason));
      }
      if (outcome.type !== 'done') { throw new Error(`worker for range at ${start} failed`); }
      parts.push(outcome.partial);
      records += outcome.partial.records;
      const next = results[i + 1];
      if (next && outcome.boundary !== next.start) {
        // The next guess cut through a quoted line break: redo the rest from the true boundary.
        const rest = await sumRangeHere(fh, outcome.boundary, layout, cfg.maxRecordBytes, bufferBytes, records, signal, () => undefined);
        parts.push(rest);
        break;
      }
    }
    const result = mergePartials(layout, parts);
    options.onProgress?.({ bytesRead: bytesTotal, bytesTotal, rows: result.rows });
    return result;
  } finally {
    await fh.close();
  }
}

/** Sum from a record boundary to the end of the file on this thread, yielding between reads. */
async function sumRangeHere(
  fh: FileHandle,
  start: number,
  layout: Layout,
  maxRecordBytes: number,
  bufferBytes: number,
  recordsBefore: number,
  signal: AbortSignal | undefined,
  progress: (bytes: number, rows: number) => void,
): Promise<PartialSums> {
  const engine = new Engine({ step: 1, offset: 0, header: false, maxRecordBytes, layout, bufferBytes });
  // Two read buffers: the next read runs on the thread pool (another core) while this thread
  // sums the bytes of the last one, so reading costs this thread only a copy from cache.
  const bufs = [Buffer.allocUnsafe(bufferBytes), Buffer.allocUnsafe(bufferBytes)];
  let pos = start;
  let turn = 0;
  let pending: Promise<number> | undefined = readAt(fh, bufs[0], pos);
  try {
    for (;;) {
      const n = await (pending);
      pending = undefined;
      if (signal?.aborted) { throw cancelled(signal); }
      if (n === 0) { break; }
      const got = bufs[turn];
      pos += n;
      turn ^= 1;
      pending = readAt(fh, bufs[turn], pos);
      engine.push(n === got.length ? got : got.subarray(0, n));
      progress(n, engine.rows);
    }
    engine.end();
  } catch (err) {
    pending?.catch(() => undefined);
    if (err instanceof CsvError && err.row !== undefined) {
      throw toAppError(new CsvError(err.code, recordsBefore + err.row, err.column, err.reason));
    }
    throw toAppError(err);
  }
  return engine.partial();
}

function runWorkers(
  tasks: RangeTask[],
  signal: AbortSignal | undefined,
  progress: (start: number, bytes: number, rows: number) => void,
): Promise<RangeResult[]> {
  const entry = workerEntry();
  return new Promise((resolve, reject) => {
    const results: (RangeResult | undefined)[] = tasks.map(() => undefined);
    const workers: Worker[] = [];
    let settled = false;
    let left = tasks.length;
    const stopAll = () => {
      for (const w of workers) { void w.terminate(); }
    };
    const onAbort = () => {
      if (settled) { return; }
      settled = true;
      stopAll();
      reject(cancelled(signal as AbortSignal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (i: number, outcome: RangeMessage) => {
      if (settled || results[i]) { return; }
      results[i] = { start: tasks[i].start, outcome };
      left--;
      // An error in the first range is certain: the others need not finish.
      if (left === 0 || (i === 0 && outcome.type === 'error')) {
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        stopAll();
        const done = results.filter((r): r is RangeResult => r !== undefined);
        resolve(done.length === tasks.length ? done : [done[0]]);
      }
    };
    tasks.forEach((task, i) => {
      const worker = new Worker(entry.file, { workerData: { decisumRange: task }, execArgv: entry.execArgv, env: entry.env });
      workers.push(worker);
      worker.on('message', (m: RangeMessage) => {
        if (m.type === 'progress') { progress(task.start, m.bytesRead, m.rows); }
        else if (m.type === 'crash') {
          if (settled) { return; }
          settled = true;
          stopAll();
          const err = new Error(m.message) as NodeJS.ErrnoException;
          if (m.code) { err.code = m.code; }
          reject(err);
        } else { finish(i, m); }
      });
      worker.on('error', (err) => {
        if (settled) { return; }
        settled = true;
        stopAll();
        reject(err);
      });
      worker.on('exit', () => {
        if (!settled && !results[i]) { finish(i, { type: 'crash', message: 'worker exited early' }); }
      });
    });
  });
}
