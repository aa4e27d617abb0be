import type { Writable } from 'node:stream';

export type CsvKind = 'int' | 'decimal' | 'sample';

export interface GenerateCsvOptions {
  rows: number;
  cols: number;
  /**
   * 'int': integers in [-1000, 1000]; 'decimal': 2-decimal numbers in [-10000, 10000];
   * both with header col1..colN. 'sample': the reference sample's shape — a pandas index
   * column of hourly timestamps, header ,col0..col{N-1}, numbers in [0, 1), and every line
   * double-encoded (quoted once more as a whole).
   */
  kind: CsvKind;
  /** Same seed, same bytes. */
  seed?: number;
}

const CHUNK = 4 << 20;

/** mulberry32: small, fast and good enough for test data. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) & 0x7fffffff; // 31 bits keep the arithmetic on small integers
  };
}

/** Decimal digits of 0..99999, laid out for copying byte by byte (the hot loop avoids division). */
const DIGITS = new Uint8Array(100_000 * 5);
const DIGIT_LEN = new Uint8Array(100_000);
for (let v = 0; v < 100_000; v++) {
  const t = String(v);
  DIGIT_LEN[v] = t.length;
  for (let i = 0; i < t.length; i++) { DIGITS[v * 5 + i] = t.charCodeAt(i); }
}

/** Write the digits of 0 ≤ v < 100000 at p; returns the new position. */
function putSmall(buf: Uint8Array, p: number, v: number): number {
  const n = DIGIT_LEN[v];
  const o = v * 5;
  for (let i = 0; i < n; i++) { buf[p + i] = DIGITS[o + i]; }
  return p + n;
}

/** Write 0 ≤ v < 10^8 as exactly 8 digits at p. */
function put8(buf: Uint8Array, p: number, v: number): void {
  for (let i = 7; i >= 0; i--) {
    const q = (v / 10) | 0;
    buf[p + i] = 48 + v - q * 10;
    v = q;
  }
}

function sampleTimestamp(i: number): string {
  // pandas writes a tz-aware DatetimeIndex as "2020-04-13 00:00:00+00:00".
  const iso = new Date(Date.UTC(2020, 3, 13) + i * 3_600_000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}+00:00`;
}

/** Stream a CSV of the given shape to out, in large buffers, waiting whenever out asks to. */
export async function generateCsv(out: NodeJS.WritableStream | Writable, opts: GenerateCsvOptions): Promise<void> {
  const { rows, cols, kind } = opts;
  if (!Number.isInteger(rows) || rows < 0) { throw new RangeError(`rows must be a non-negative integer, got ${rows}`); }
  if (!Number.isInteger(cols) || cols < 1) { throw new RangeError(`cols must be a positive integer, got ${cols}`); }
  const next = random(opts.seed ?? 42);
  const sink = out as Writable;
  const maxRow = kind === 'sample' ? 64 + cols * 26 : cols * 10 + 2;
  let buf = Buffer.allocUnsafe(Math.max(CHUNK, maxRow * 2));
  let p = 0;

  let failed: Error | undefined;
  const onError = (err: Error) => (failed = err);
  sink.on('error', onError);
  const flush = async () => {
    if (failed) { throw failed; }
    if (p === 0) { return; }
    const ok = sink.write(buf.subarray(0, p));
    buf = Buffer.allocUnsafe(buf.length); // the written buffer now belongs to the stream
    p = 0;
    if (!ok) {
      await new Promise<void>((resolve, reject) => {
        const done = (err?: Error) => {
          sink.off('drain', done);
          sink.off('error', done);
          if (err) { reject(err); }
          else { resolve(); }
        };
        sink.on('drain', done);
        sink.on('error', done);
      });
    }
  };

  try {
    if (kind === 'sample') {
      const names = Array.from({ length: cols }, (_, i) => `""col${i}""`).join(',');
      p += buf.write(`",${names}"\n`, p, 'latin1');
    } else {
      p += buf.write(`${Array.from({ length: cols }, (_, i) => `col${i + 1}`).join(',')}\n`, p, 'latin1');
    }
    for (let r = 0; r < rows; r++) {
      if (buf.length - p < maxRow) { await flush(); }
      if (kind === 'int') {
        for (let c = 0; c < cols; c++) {
          const v = (next() % 2001) - 1000;
          if (v < 0) { buf[p++] = 45; }
          p = putSmall(buf, p, v < 0 ? -v : v);
          buf[p++] = c === cols - 1 ? 10 : 44;
        }
      } else if (kind === 'decimal') {
        for (let c = 0; c < cols; c++) {
          const v = (next() % 2_000_001) - 1_000_000; // hundredths
          const a = v < 0 ? -v : v;
          if (v < 0) { buf[p++] = 45; }
          const ip = (a / 100) | 0;
          const f = a - ip * 100;
          const t = (f / 10) | 0;
          p = putSmall(buf, p, ip);
          buf[p] = 46;
          buf[p + 1] = 48 + t;
          buf[p + 2] = 48 + f - t * 10;
          p += 3;
          buf[p++] = c === cols - 1 ? 10 : 44;
        }
      } else {
        buf[p++] = 34;
        p += buf.write(sampleTimestamp(r), p, 'latin1');
        for (let c = 0; c < cols; c++) {
          // ,""0.dddddddddddddddd""  — 16 random digits, like a double's repr
          buf[p] = 44;
          buf[p + 1] = 34;
          buf[p + 2] = 34;
          buf[p + 3] = 48;
          buf[p + 4] = 46;
          p += 5;
          put8(buf, p, next() % 100_000_000);
          put8(buf, p + 8, next() % 100_000_000);
          p += 16;
          buf[p] = 34;
          buf[p + 1] = 34;
          p += 2;
        }
        buf[p] = 34;
        buf[p + 1] = 10;
        p += 2;
      }
    }
    await flush();
  } finally {
    sink.off('error', onError);
  }
}
