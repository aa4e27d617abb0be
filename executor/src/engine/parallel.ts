import path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  AppError,
  cancelled,
  DEFAULT_READ_POLICY,
  LocalFile,
  throwIfCancelled,
  type JobResult,
  type ObjectReader,
  type Progress,
  type RetryInfo,
} from '@decisum/shared';
import { Engine, type EngineConfig } from './engine';
import { CsvError } from './errors';
import type { Layout } from './header';
import { mergePartials, type PartialSums } from './sums';
import { engineConfig, toAppError, type EngineOptions } from './options';
import { SimdRows } from './simd';
import type { RangeMessage, RangeTask } from './worker';

export interface SumOptions extends EngineOptions {
  /** Worker threads to split a local file across; 1 sums on the calling thread. */
  threads: number;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Told of each retried read in a worker thread (reads on this thread tell the reader's own onRetry). */
  onRetry?: (info: RetryInfo) => void;
  /** Files with fewer data bytes than this are summed on one thread; 32 MiB by default (tests lower it). */
  minParallelBytes?: number;
  /** Read buffer per thread; 1 MiB by default. */
  bufferBytes?: number;
  /** The compiled worker module; `worker.js` beside this file by default (tests running the sources give the built one). */
  workerEntry?: string;
}

export type SumFileOptions = SumOptions;

const DEFAULT_MIN_PARALLEL = 32 << 20;
const DEFAULT_BUFFER = 1 << 20;

/*
 * Splitting (local files only): the main thread reads the header, then cuts the data into byte
 * ranges that start after a line feed. A line feed may sit inside a quoted field, so every range
 * but the first starts on a guess. Each worker reports where its own last record really ended (it
 * parses from a true record start if its guess was right); when that differs from the next range's
 * guess, the ranges from there on are summed again on one thread from the true boundary. Quoted
 * line breaks near a cut therefore cost time, never a wrong sum.
 *
 * Everything else (one thread, a small file, S3) is summed in order on this thread from the
 * reader's chunks, which for S3 arrive from parallel ranged GETs.
 */

interface RangeResult {
  start: number;
  outcome: RangeMessage;
}

interface Header {
  layout: Layout;
  /** Offset of the first data record. */
  dataStart: number;
  /** Records the header took (for row numbers). */
  records: number;
}

/** Sums an object opened at a verified version. */
export async function sumObject(object: ObjectReader, options: SumOptions): Promise<JobResult> {
  const cfg = engineConfig(options);
  const { signal } = options;
  throwIfCancelled(signal);
  const bufferBytes = options.bufferBytes ?? DEFAULT_BUFFER;
  const bytesTotal = object.info.size;
  const threads = Math.max(1, Math.floor(options.threads));
  const version = object.version;
  if (version.kind !== 'local' || threads === 1 || bytesTotal < (options.minParallelBytes ?? DEFAULT_MIN_PARALLEL)) {
    return sumInOrder(object, cfg, bufferBytes, options);
  }

  const header = await readHeader(object, cfg, bufferBytes);
  const { layout, dataStart } = header;
  let bytesRead = dataStart;
  const rowsBy = new Map<number, number>();
  const progress = (start: number, bytes: number, rows: number) => {
    bytesRead += bytes;
    rowsBy.set(start, rows);
    let total = 0;
    for (const r of rowsBy.values()) { total += r; }
    options.onProgress?.({ bytesRead: Math.min(bytesRead, bytesTotal), bytesTotal, rows: total });
  };

  const starts = await rangeStarts(object, dataStart, threads);
  const tasks: RangeTask[] = starts.map((start, i) => ({
    file: version,
    policy: object.policy,
    start,
    end: starts[i + 1],
    layout,
    maxRecordBytes: cfg.maxRecordBytes,
    bufferBytes,
  }));
  const entry = options.workerEntry ?? path.join(__dirname, 'worker.js');
  const results = await runWorkers(entry, tasks, signal, progress, options.onRetry);

  // Verify the guesses in file order; the first range's start is known to be right.
  const parts: PartialSums[] = [];
  let records = header.records;
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
      const rest = await sumRangeHere(object, outcome.boundary, cfg.maxRecordBytes, { ...header, records }, bufferBytes, signal, () => undefined);
      parts.push(rest);
      break;
    }
  }
  await object.verify();
  const result = mergePartials(layout, parts);
  options.onProgress?.({ bytesRead: bytesTotal, bytesTotal, rows: result.rows });
  return result;
}

/** sumObject over a file named by an absolute path, read under the default policy (benchmarks, tests). */
export async function sumFile(absPath: string, options: SumFileOptions): Promise<JobResult> {
  const file = await LocalFile.open({ path: absPath, name: path.basename(absPath) }, DEFAULT_READ_POLICY, { signal: options.signal });
  try {
    return await sumObject(file, options);
  } finally {
    await file.close();
  }
}

/**
 * The whole object on this thread in one pass, header included, in the order the reader gives: the
 * path of every S3 object and every small local file. A job of a few hundred KB pays for no header
 * pass, no fresh WebAssembly instance (one comes from this thread's pool) and no read buffer larger
 * than the object.
 */
async function sumInOrder(object: ObjectReader, cfg: EngineConfig, bufferBytes: number, options: SumOptions): Promise<JobResult> {
  const bytesTotal = object.info.size;
  const simdRows = SimdRows.take();
  try {
    const engine = new Engine({ ...cfg, bufferBytes: fitted(bufferBytes, bytesTotal), simdRows });
    let bytesRead = 0;
    for await (const chunk of object.chunks()) {
      throwIfCancelled(options.signal);
      engine.push(chunk);
      bytesRead += chunk.length;
      options.onProgress?.({ bytesRead, bytesTotal, rows: engine.rows });
    }
    engine.end();
    return { rows: engine.rows, columns: engine.columns() };
  } catch (err) {
    throw toAppError(err);
  } finally {
    SimdRows.give(simdRows);
  }
}

/** The read buffer for an object of size bytes: the next power of two above it, at least 64 KiB, at most bufferBytes. */
function fitted(bufferBytes: number, size: number): number {
  let n = 1 << 16;
  while (n <= size && n < bufferBytes) { n *= 2; }
  return Math.min(n, bufferBytes);
}

async function readHeader(object: ObjectReader, cfg: ReturnType<typeof engineConfig>, bufferBytes: number): Promise<Header> {
  const head = new Engine({ ...cfg, headerOnly: true, bufferBytes: Math.min(bufferBytes, 1 << 16) });
  let pos = 0;
  try {
    while (!head.done) {
      const n = await object.readAt(head.space(), pos);
      if (n === 0) { break; }
      pos += n;
      head.commit(n);
    }
    head.end();
  } catch (err) {
    throw toAppError(err);
  }
  return { layout: head.layout as Layout, dataStart: head.boundary, records: head.records };
}

/** Guessed range starts: dataStart, then just after the first line feed at or after each cut. */
async function rangeStarts(object: ObjectReader, dataStart: number, threads: number): Promise<number[]> {
  const bytesTotal = object.info.size;
  const starts = [dataStart];
  const probe = Buffer.allocUnsafe(1 << 16);
  for (let i = 1; i < threads; i++) {
    let at = Math.max(dataStart + Math.floor(((bytesTotal - dataStart) * i) / threads) - 1, starts[starts.length - 1]);
    let found = bytesTotal;
    while (at < bytesTotal) {
      const n = await object.readAt(probe, at);
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
  return starts;
}

/** Sums from a record boundary to the end of the object on this thread, in the order the reader gives. */
async function sumRangeHere(
  object: ObjectReader,
  start: number,
  maxRecordBytes: number,
  header: Header,
  bufferBytes: number,
  signal: AbortSignal | undefined,
  progress: (bytes: number, rows: number) => void,
): Promise<PartialSums> {
  const engine = Engine.forRange({ layout: header.layout, maxRecordBytes, bufferBytes });
  try {
    for await (const chunk of object.chunks({ start })) {
      throwIfCancelled(signal);
      engine.push(chunk);
      progress(chunk.length, engine.rows);
    }
    engine.end();
  } catch (err) {
    if (err instanceof CsvError && err.row !== undefined) {
      throw toAppError(new CsvError(err.code, header.records + err.row, err.column, err.reason));
    }
    throw toAppError(err);
  }
  return engine.partial();
}

function runWorkers(
  entry: string,
  tasks: RangeTask[],
  signal: AbortSignal | undefined,
  progress: (start: number, bytes: number, rows: number) => void,
  onRetry: ((info: RetryInfo) => void) | undefined,
): Promise<RangeResult[]> {
  return new Promise((resolve, reject) => {
    const results: (RangeResult | undefined)[] = tasks.map(() => undefined);
    const workers: Worker[] = [];
    let settled = false;
    let left = tasks.length;
    const stopAll = () => {
      for (const w of workers) { void w.terminate(); }
    };
    const fail = (err: Error) => {
      if (settled) { return; }
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      stopAll();
      reject(err);
    };
    const onAbort = () => fail(cancelled(signal as AbortSignal));
    signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (i: number, outcome: RangeMessage) => {
      if (settled || results[i]) { return; }
      results[i] = { start: tasks[i].start, outcome };
      left--;
      // An error in the first range is certain: the others need not finish.
      if (left === 0 || (i === 0 && outcome.type !== 'done')) {
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        stopAll();
        const done = results.filter((r): r is RangeResult => r !== undefined);
        resolve(done.length === tasks.length ? done : [done[0]]);
      }
    };
    tasks.forEach((task, i) => {
      const worker = new Worker(entry, { workerData: { decisumRange: task } });
      workers.push(worker);
      worker.on('message', (m: RangeMessage) => {
        if (m.type === 'progress') {
          progress(task.start, m.bytesRead, m.rows);
        } else if (m.type === 'retry') {
          onRetry?.({ attempt: m.attempt, offset: m.offset, delayMs: m.delayMs, error: Object.assign(new Error(m.message), { code: m.code }) });
        } else if (m.type === 'crash') {
          fail(new Error(m.message));
        } else if (m.type === 'failed') {
          // A storage failure anywhere fails the whole read, wherever its range lies.
          fail(new AppError(m.code, m.message, { status: m.status, permanent: m.permanent }));
        } else {
          finish(i, m);
        }
      });
      worker.on('error', fail);
      worker.on('exit', () => {
        if (!settled && !results[i]) { fail(new Error('worker exited early')); }
      });
    });
  });
}
