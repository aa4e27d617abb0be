/*
 * The engine's WebAssembly fast path (executor/assembly/rows.ts, built into executor/dist/rows.wasm
 * by `npm run build:wasm`): one instance per Engine, whose memory holds the Engine's read buffer,
 * so the bytes read are the bytes it scans, with no copy. A new instance maps fresh memory, which
 * for many small jobs drives the collector: SimdRows.take() and give() keep instances for reuse.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

// The same file from src/engine (tests, ts-node) and from dist/engine (the built service).
const WASM = path.join(__dirname, '..', '..', 'dist', 'rows.wasm');
const PAGE = 65536;

interface Exports {
  memory: WebAssembly.Memory;
  setup(delimiter: number, fieldCount: number, columns: number): void;
  rows(p: number, lim: number, stop: number, maxRecord: number): number;
  status: WebAssembly.Global;
  taken: WebAssembly.Global;
  MAX_COLUMNS: WebAssembly.Global;
  IDX: WebAssembly.Global;
  SC: WebAssembly.Global;
  ACC: WebAssembly.Global;
  BUF: WebAssembly.Global;
  OTHER_ROW: WebAssembly.Global;
}

let compiled: WebAssembly.Module | undefined;

/** Instances kept for the next Engine on this thread; one Engine holds an instance at a time. */
const pool: SimdRows[] = [];
const POOL_SIZE = 16;
/** An instance whose memory grew past this (a long record) is dropped rather than kept. */
const POOL_MEMORY_BYTES = 8 << 20;

export function compileFastPath(file = WASM): WebAssembly.Module {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new Error(`the CSV engine's WebAssembly fast path is not built (${file}); run npm run build:wasm`, { cause: err });
  }
  return new WebAssembly.Module(bytes);
}

/** Compile the fast path now (once per thread), so a missing build fails a process at its start, not at its first job. */
export function loadFastPath(): void {
  compiled ??= compileFastPath();
}

export class SimdRows {
  /** Rows taken by the last rows() call. */
  taken = 0;
  /** Whether the last rows() call stopped at a row it does not take (the caller takes that one). */
  otherRow = false;
  private readonly x: Exports;
  private readonly bufAt: number;
  private readonly otherRowStatus: number;
  private i32 = new Int32Array(0);
  private i64 = new BigInt64Array(0);
  private k = 0;

  constructor() {
    loadFastPath();
    this.x = new WebAssembly.Instance(compiled as WebAssembly.Module, {}).exports as unknown as Exports;
    this.bufAt = this.x.BUF.value as number;
    this.otherRowStatus = this.x.OTHER_ROW.value as number;
  }

  /** An instance from this thread's pool, or a new one. Give it back once its Engine is done. */
  static take(): SimdRows {
    return pool.pop() ?? new SimdRows();
  }

  /** Keeps an instance for the next take(); its Engine must not use it any more. */
  static give(rows: SimdRows): void {
    if (pool.length < POOL_SIZE && rows.x.memory.buffer.byteLength <= POOL_MEMORY_BYTES && !pool.includes(rows)) { pool.push(rows); }
  }

  /** A read buffer of size bytes, followed by slack bytes of memory; growing it keeps its bytes. */
  buffer(size: number, slack: number): Buffer {
    const memory = this.x.memory;
    const need = this.bufAt + size + slack;
    if (memory.buffer.byteLength < need) { memory.grow(Math.ceil((need - memory.buffer.byteLength) / PAGE)); }
    return Buffer.from(memory.buffer, this.bufAt, size);
  }

  /** Fix the layout; false when there are too many summed columns for the fast path. */
  setup(delimiter: number, fieldCount: number, indices: Int32Array): boolean {
    if (indices.length > (this.x.MAX_COLUMNS.value as number)) { return false; }
    this.k = indices.length;
    this.x.setup(delimiter, fieldCount, this.k);
    const { i32, i64 } = this.views();
    i32.set(indices, (this.x.IDX.value as number) >> 2);
    // A reused instance may hold sums an earlier Engine left when it failed mid-chunk.
    const acc = (this.x.ACC.value as number) >> 3;
    i64.fill(0n, acc, acc + this.k);
    return true;
  }

  /** Set each column's scale: the fraction digits its sum is kept at. */
  scales(sc: Int32Array): void {
    this.views().i32.set(sc, (this.x.SC.value as number) >> 2);
  }

  /**
   * Plain rows of buf[p, lim) (no quote or NUL in it; lim just past a line feed), stopping before
   * a row starting at or past stop. Returns where it stopped; the sums are then in sum(j).
   */
  rows(p: number, lim: number, stop: number, maxRecord: number): number {
    const at = this.bufAt;
    const q = this.x.rows(at + p, at + lim, at + Math.min(stop, lim), maxRecord) - at;
    this.taken = this.x.taken.value as number;
    this.otherRow = this.x.status.value === this.otherRowStatus;
    return q;
  }

  /** Add each column's sum since the last call (at the scales set) to totals[j], and zero it. */
  takeSums(totals: bigint[]): void {
    const i64 = this.views().i64;
    const at = (this.x.ACC.value as number) >> 3;
    for (let j = 0; j < this.k; j++) {
      const s = i64[at + j];
      if (s !== 0n) {
        totals[j] += s;
        i64[at + j] = 0n;
      }
    }
  }

  /** Views of the memory, made again after it grows (growing detaches the old ones). */
  private views(): { i32: Int32Array; i64: BigInt64Array } {
    const memory = this.x.memory.buffer;
    if (this.i32.buffer !== memory) {
      this.i32 = new Int32Array(memory);
      this.i64 = new BigInt64Array(memory);
    }
    return { i32: this.i32, i64: this.i64 };
  }
}
