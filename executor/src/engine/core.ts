import { isUtf8 } from 'node:buffer';
import { SimdRows } from './simd';

/*
 * The summing engine. Pure: it takes bytes and returns sums, and imports nothing
 * from @decisum/shared so that worker threads can load it under ts-node too.
 *
 * Layout of the work: bytes land in one reused, 4-byte-aligned buffer, which lives in
 * the memory of the WebAssembly fast path (simd.ts). Rows with no quote or NUL take
 * that path: 16 bytes a step to find delimiters, summed fields parsed into scaled
 * integers. A row it does not take goes through the TypeScript fast path (delimiters
 * counted a word at a time; also the whole fast path when simd is off). Any other row,
 * or a row neither fast path likes (spaces, '+', exponents, empty or ragged fields, long
 * numbers), goes through the exact RFC 4180 record parser, which is also the only path
 * that raises errors, so all paths agree on what a file means.
 *
 * Row numbers: 1-based physical records of the file, the header (or first line)
 * being row 1; blank and all-empty records count as rows but are not summed.
 */

export type CsvErrorCode = 'NON_NUMERIC' | 'RAGGED_ROW' | 'UNTERMINATED_QUOTE' | 'NOT_TEXT' | 'LINE_TOO_LONG' | 'EMPTY_FILE';

export function csvErrorMessage(row: number | undefined, column: string | undefined, reason: string): string {
  if (row === undefined) { return reason; }
  return column === undefined ? `row ${row}: ${reason}` : `row ${row}, column ${column}: ${reason}`;
}

/** The engine's own error; the public Summer turns it into a permanent AppError. */
export class CsvError extends Error {
  constructor(
    readonly code: CsvErrorCode,
    readonly row: number | undefined,
    readonly column: string | undefined,
    readonly reason: string,
  ) {
    super(csvErrorMessage(row, column, reason));
    this.name = 'CsvError';
  }
}

/** What the header decided; workers receive it so they can start mid-file. */
export interface Layout {
  delimiter: number;
  /** Fields per record, index column included. */
  fieldCount: number;
  /** 0-based field index of each summed column. */
  indices: number[];
  names: string[];
}

export interface EngineConfig {
  step: number;
  offset: number;
  delimiter?: number;
  header: boolean;
  maxRecordBytes: number;
  /** Start at a record boundary with this layout instead of reading a header. */
  layout?: Layout;
  /** Stream offset at which to stop: records starting at or after it are left alone. */
  stopAt?: number;
  /** Stop right after the header: boundary is then where data records begin. */
  headerOnly?: boolean;
  bufferBytes?: number;
  /** Plain rows through the WebAssembly SIMD fast path (simd.ts); true when absent. */
  simd?: boolean;
  /** The WebAssembly instance to use (one taken from SimdRows' pool); a new one when absent. */
  simdRows?: SimdRows;
}

/** Exact per-column sums as BigInt strings at their scales: what a worker sends back. */
export interface PartialSums {
  rows: number;
  records: number;
  sums: string[];
  scales: number[];
  counts: number[];
}

const DELIMS = [44, 59, 9, 124]; // , ; \t |
const LF_PAT = 0x0a0a0a0a;
const HI = 0x7f7f7f7f;
/** (w - B11) & ~w & M80 is non-zero exactly when some byte of w is below 11 (a line feed, a tab, …). */
const B11 = 0x0b0b0b0b;
const M80 = 0x80808080 | 0;
/** Accumulators move to BigInt past this, so an addend below 2^52 can never make a double inexact. */
const FLUSH = 4503599627370496; // 2^52
const MAX_SCALE = 1000;
const MAX_SHIFT = 1000;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const POW10: number[] = [];
for (let i = 0, v = 1; i <= 22; i++, v *= 10) { POW10.push(v); }

function isDigit(c: number): boolean {
  return (c - 48) >>> 0 < 10;
}

/** Fewer plain rows than this before one the WebAssembly path does not take, and the TypeScript one takes the rest of the chunk. */
const SIMD_MIN_RUN = 8;

/** Bytes past the end of the read buffer that word loops may load (never use). */
const SLACK = 16;

/** A read buffer of size bytes rounded up to whole words, with SLACK bytes of memory after it. */
function alignedBuffer(size: number, simd: SimdRows | null): Buffer {
  const n = (size + 3) & ~3;
  if (simd) { return simd.buffer(n, SLACK); }
  // allocUnsafeSlow gives the Buffer its own ArrayBuffer at offset 0, so an Int32Array view lines up.
  return Buffer.allocUnsafeSlow(n + SLACK).subarray(0, n);
}

/*
 * SWAR over an Int32Array view: a byte equal to the pattern's byte becomes 0x80 in the mask,
 * exactly. The fast region always ends with a line feed inside the buffer, and the buffer's
 * length is a multiple of 4, so whole words can be read from the word holding p up to that
 * line feed: no byte-by-byte prologue or tail. Bytes before p are masked off.
 */

/** End of the line starting at p, counting a line feed inside quotes as content; -1 if none. */
function quotedLineEnd(buf: Buffer, p: number, end: number): number {
  let inQ = false;
  for (; p < end; p++) {
    const c = buf[p];
    if (c === 34) { inQ = !inQ; }
    else if (c === 10 && !inQ) { return p + 1; }
  }
  return -1;
}

function countDelims(buf: Uint8Array, s: number, e: number): number[] {
  const counts = [0, 0, 0, 0];
  let inQ = false;
  for (let p = s; p < e; p++) {
    const c = buf[p];
    if (c === 34) { inQ = !inQ; }
    else if (!inQ) {
      const i = DELIMS.indexOf(c);
      if (i >= 0) { counts[i]++; }
    }
  }
  return counts;
}

/** The delimiter of a header line: the candidate seen most often outside quotes, looking inside a double-encoded line. */
export function detectDelimiter(buf: Uint8Array, s: number, e: number): number {
  let counts = countDelims(buf, s, e);
  if (counts.every((c) => c === 0) && buf[s] === 34) {
    const inner: number[] = [];
    for (let p = s + 1; p < e; p++) {
      if (buf[p] === 34) {
        if (buf[p + 1] !== 34) { break; }
        p++;
      }
      inner.push(buf[p]);
    }
    counts = countDelims(Uint8Array.from(inner), 0, inner.length);
  }
  let best = 0;
  for (let i = 1; i < 4; i++) { if (counts[i] > counts[best]) { best = i; } }
  return DELIMS[best];
}

/** Exact decimal text of an integer scaled by 10^scale; the scale is kept, trailing zeros included. */
export function formatScaled(total: bigint, scale: number): string {
  const neg = total < 0n;
  let s = (neg ? -total : total).toString();
  if (scale > 0) {
    if (s.length <= scale) { s = '0'.repeat(scale - s.length + 1) + s; }
    s = `${s.slice(0, s.length - scale)}.${s.slice(s.length - scale)}`;
  }
  return neg ? `-${s}` : s;
}

function cellText(b: Buffer, s: number, e: number): string {
  const max = 60;
  const text = b.toString('utf8', s, Math.min(e, s + max));
  return JSON.stringify(e - s > max ? `${text}…` : text);
}

const PHASE_HEADER = 0;
const PHASE_DATA = 1;

export class Engine {
  /** Data records summed so far (blank and all-empty records excluded). */
  rows = 0;
  /** Physical records consumed, header and blank ones included: the row number of the last one. */
  records = 0;
  /** Set once a stop offset was reached; boundary is then the stream offset of the first record not taken. */
  done = false;
  boundary = -1;
  layout: Layout | undefined;

  // Set by useBuffer. w32 and all are buf as words and as bytes, slack included: loops may read past the end.
  private buf!: Buffer;
  private w32!: Int32Array;
  private all!: Uint8Array;
  private readonly simd: SimdRows | null;
  /** Whether plain rows go through simd: it is there and can take this layout. */
  private simdRowsOn = false;
  /** Whether simd holds the columns' current scales. */
  private simdScales = false;
  private len = 0;
  /** Stream offset of buf[0]. */
  private base = 0;
  private scratch!: Buffer;
  private scratch2: Buffer;
  private phase = PHASE_HEADER;
  private finished = false;
  private bomChecked = false;

  private delim = 44;
  private nf = 0;
  private k = 0;
  private idx = new Int32Array(0);
  private slotOf = new Int32Array(0);
  private names: string[] = [];
  private acc = new Float64Array(0);
  private big: bigint[] = [];
  private sc = new Int32Array(0);
  private cnt = new Float64Array(0);
  /** Rows the plain fast path summed: each adds one to every column's count. */
  private fastCount = 0;
  private tv = new Float64Array(0);
  private tf = new Int32Array(0);
  private cs = new Int32Array(0);
  private ce = new Int32Array(0);
  // Double-encoded rows' sums, in three parts by decimal position: integer part, fraction digits
  // 1–12 and 13–24 (each as an integer), moved to lBig (scale 24) before any can lose a digit.
  private lI = new Float64Array(0);
  private lF1 = new Float64Array(0);
  private lF2 = new Float64Array(0);
  private lBig: bigint[] = [];
  /** Most fraction digits among the values in lI/lF1/lF2; -1 while none. */
  private lFr = new Int32Array(0);
  private tI = new Float64Array(0);
  private tF1 = new Float64Array(0);
  private tF2 = new Float64Array(0);

  // Set by parseRecord.
  private nFields = 0;
  private allEmpty = true;
  private f0end = 0;
  private collect: Buffer[] | null = null;

  private qPos = -1;
  private nulPos = -1;
  private view!: Buffer;

  constructor(private readonly cfg: EngineConfig) {
    // Typed-array views of WebAssembly memory read it as little-endian, as the host must be.
    // A header-only engine (the parallel runner's) never reaches a data row, so it needs no instance.
    this.simd = cfg.simd !== false && !cfg.headerOnly && LITTLE_ENDIAN ? (cfg.simdRows ?? new SimdRows()) : null;
    this.useBuffer(alignedBuffer(cfg.bufferBytes ?? 1 << 20, this.simd));
    this.scratch2 = Buffer.allocUnsafeSlow(0);
    if (cfg.layout) { this.setLayout(cfg.layout); }
  }

  /** Free space to read into; call commit(n) after writing n bytes at its start. */
  space(): Buffer {
    return this.buf.subarray(this.len);
  }

  commit(n: number): void {
    this.len += n;
    if (this.len === this.buf.length && !this.done) { this.run(false); }
  }

  push(chunk: Uint8Array): void {
    if (this.finished) { throw new Error('push after finish'); }
    let off = 0;
    while (off < chunk.length && !this.done) {
      const n = Math.min(this.buf.length - this.len, chunk.length - off);
      this.buf.set(chunk.subarray(off, off + n), this.len);
      off += n;
      this.commit(n);
    }
  }

  /** Process what is left as the end of the input. */
  end(): void {
    if (this.finished) { return; }
    this.finished = true;
    if (!this.done) { this.run(true); }
    if (this.phase === PHASE_HEADER) { throw this.emptyFile(); }
    if (!this.done) { this.boundary = this.base + this.len; }
  }

  partial(): PartialSums {
    const sums: string[] = [];
    const scales: number[] = [];
    for (let j = 0; j < this.k; j++) {
      const [sum, scale] = this.total(j);
      sums.push(sum.toString());
      scales.push(scale);
    }
    return { rows: this.rows, records: this.records, sums, scales, counts: Array.from(this.cnt, (c) => c + this.fastCount) };
  }

  /** Column j's exact sum as an integer at a scale: the most fraction digits of any value in it. */
  private total(j: number): [bigint, number] {
    let sum = this.big[j] + BigInt(this.acc[j]);
    let scale = this.sc[j];
    const lfr = this.lFr[j];
    if (lfr >= 0) {
      let l = this.lBig[j] + BigInt(this.lI[j]) * 10n ** 24n + BigInt(this.lF1[j]) * 10n ** 12n + BigInt(this.lF2[j]);
      l /= 10n ** BigInt(24 - lfr); // exact: no value in it has more than lfr fraction digits
      const s = Math.max(scale, lfr);
      sum = sum * 10n ** BigInt(s - scale) + l * 10n ** BigInt(s - lfr);
      scale = s;
    }
    return [sum, scale];
  }

  /** Bytes consumed so far, as a stream offset. */
  get position(): number {
    return this.base;
  }

  private setLayout(layout: Layout): void {
    this.layout = layout;
    this.delim = layout.delimiter;
    this.nf = layout.fieldCount;
    const k = layout.indices.length;
    this.k = k;
    this.idx = Int32Array.from(layout.indices);
    this.names = layout.names;
    this.slotOf = new Int32Array(layout.fieldCount).fill(-1);
    layout.indices.forEach((f, j) => (this.slotOf[f] = j));
    this.acc = new Float64Array(k);
    this.big = new Array<bigint>(k).fill(0n);
    this.sc = new Int32Array(k);
    this.cnt = new Float64Array(k);
    this.tv = new Float64Array(k);
    this.tf = new Int32Array(k);
    this.cs = new Int32Array(k);
    this.ce = new Int32Array(k);
    this.lI = new Float64Array(k);
    this.lF1 = new Float64Array(k);
    this.lF2 = new Float64Array(k);
    this.lBig = new Array<bigint>(k).fill(0n);
    this.lFr = new Int32Array(k).fill(-1);
    this.tI = new Float64Array(k);
    this.tF1 = new Float64Array(k);
    this.tF2 = new Float64Array(k);
    this.simdRowsOn = this.simd !== null && k > 0 && this.simd.setup(this.delim, this.nf, this.idx);
    this.simdScales = false;
    this.phase = PHASE_DATA;
  }

  private emptyFile(): CsvError {
    return new CsvError('EMPTY_FILE', undefined, undefined, this.cfg.header ? 'the file is empty: it has no header row' : 'the file is empty: it has no rows');
  }

  private fail(code: CsvErrorCode, column: string | undefined, reason: string): CsvError {
    return new CsvError(code, this.records + 1, column, reason);
  }

  private run(eof: boolean): void {
    const end = this.len;
    this.view = this.buf.subarray(0, end);
    this.qPos = -1;
    this.nulPos = -1;
    let p = 0;
    if (this.phase === PHASE_HEADER) {
      p = this.readHeader(eof);
      if (this.phase === PHASE_HEADER) {
        this.keep(p, eof);
        return;
      }
      if (this.cfg.headerOnly) {
        this.done = true;
        this.boundary = this.base + p;
        this.keep(p, eof);
        return;
      }
    }
    const stop = this.cfg.stopAt === undefined ? Infinity : this.cfg.stopAt - this.base;
    while (p < end) {
      if (p >= stop) {
        this.done = true;
        this.boundary = this.base + p;
        break;
      }
      if (this.qPos < p) { this.qPos = this.find(34, p, end); }
      if (this.nulPos < p) { this.nulPos = this.find(0, p, end); }
      const special = Math.min(this.qPos, this.nulPos);
      // Rows wholly before the first quote or NUL can take the fast path.
      // (Word-at-a-time skipping assumes little-endian words; elsewhere every row takes the exact path.)
      const lim = special > p && LITTLE_ENDIAN ? this.view.lastIndexOf(10, special - 1) + 1 : p;
      if (lim > p) {
        p = this.simdRowsOn ? this.simdRows(p, lim, stop) : this.fastRows(p, lim, stop);
        continue;
      }
      if (special === end && !eof) { break; } // an incomplete last line with nothing special in it
      if (this.qPos === p && this.nulPos > p && this.k > 0 && this.nf > 1 && LITTLE_ENDIAN) {
        // A row opening with a quote: most likely double-encoded, like every row of the reference sample.
        const q = this.deRows(p, end, stop);
        if (q > p) {
          p = q;
          continue;
        }
      }
      const r = this.slowRecord(p, end, eof);
      if (r < 0) { break; }
      p = r;
    }
    if (eof && !this.done && p >= end) { this.boundary = this.base + end; }
    this.keep(p, eof);
  }

  private find(byte: number, p: number, end: number): number {
    const i = this.view.indexOf(byte, p);
    return i < 0 ? end : i;
  }

  /** Keep the unfinished record at buf[p, len): move it to the front, growing the buffer if it fills half of it. */
  private keep(p: number, eof: boolean): void {
    const rest = this.len - p;
    if (this.done || eof) {
      this.base += p;
      this.len = rest;
      return;
    }
    if (rest > this.cfg.maxRecordBytes) {
      const mib = Math.round((this.cfg.maxRecordBytes / 1048576) * 10) / 10;
      throw this.fail('LINE_TOO_LONG', undefined, `the record is longer than ${mib} MiB; is a quote left open?`);
    }
    if (p > 0) { this.buf.copyWithin(0, p, this.len); }
    this.base += p;
    this.len = rest;
    if (rest > this.buf.length >> 1) {
      const old = this.buf;
      const next = alignedBuffer(old.length * 2, this.simd); // the WebAssembly memory grows in place
      if (!this.simd) { old.copy(next, 0, 0, rest); }
      this.useBuffer(next);
    }
  }

  private useBuffer(buf: Buffer): void {
    this.buf = buf;
    this.w32 = new Int32Array(buf.buffer, buf.byteOffset, (buf.length + SLACK) >> 2);
    this.all = new Uint8Array(buf.buffer, buf.byteOffset, buf.length + SLACK);
    this.scratch = Buffer.allocUnsafeSlow(buf.length);
    this.view = buf.subarray(0, 0);
  }

  private readHeader(eof: boolean): number {
    const buf = this.buf;
    const end = this.len;
    let p = 0;
    if (!this.bomChecked) {
      if (end < 3 && !eof) { return 0; }
      this.bomChecked = true;
      if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) { p = 3; }
    }
    for (;;) {
      // Blank lines before the header are skipped (and counted as rows).
      if (p < end && buf[p] === 10) {
        p++;
        this.records++;
      } else if (p + 1 < end && buf[p] === 13 && buf[p + 1] === 10) {
        p += 2;
        this.records++;
      } else { break; }
    }
    if (p >= end || (end - p === 1 && buf[p] === 13)) {
      if (eof) { throw this.emptyFile(); }
      return p;
    }
    let delim = this.cfg.delimiter;
    if (delim === undefined) {
      const lineEnd = quotedLineEnd(buf, p, end);
      if (lineEnd < 0 && !eof) { return p; }
      delim = detectDelimiter(buf, p, lineEnd < 0 ? end : lineEnd);
    }
    this.delim = delim;
    this.nf = 0;
    const fields: Buffer[] = [];
    this.collect = fields;
    let r: number;
    try {
      r = this.parseRecord(buf, p, end, eof, this.scratch, false);
      if (r < 0) { return p; }
      if (fields.length === 1 && fields[0].includes(delim)) {
        const outer = fields[0];
        fields.length = 0;
        this.parseRecord(outer, 0, outer.length, true, Buffer.allocUnsafe(outer.length), true);
      }
    } finally {
      this.collect = null;
    }
    for (let i = 0; i < fields.length; i++) {
      if (fields[i].includes(0) || !isUtf8(fields[i])) {
        throw this.fail('NOT_TEXT', undefined, `field ${i + 1} of the ${this.cfg.header ? 'header' : 'first row'} is not UTF-8 text; is this a CSV file?`);
      }
    }
    const header = this.cfg.header;
    const dataStart = header && fields.length > 1 && fields[0].length === 0 ? 1 : 0;
    const indices: number[] = [];
    const names: string[] = [];
    for (let i = dataStart + this.cfg.offset; i < fields.length; i += this.cfg.step) {
      indices.push(i);
      const name = header ? fields[i].toString('utf8').trim() : '';
      names.push(name === '' ? `col${i}` : name);
    }
    this.setLayout({ delimiter: delim, fieldCount: fields.length, indices, names });
    if (!header) { return p; } // the first line is data: read it again as a record
    this.records++;
    return r;
  }

  /**
   * Rows in [p, lim), each ending in a line feed with no quote or NUL before lim.
   *
   * Fields not summed are skipped a word at a time (the word loops are written out here rather
   * than called, so that they stay in the optimised loop): a first word masked below p, then two
   * words per turn while neither holds a byte below 11 (a line feed, or a rare tab or control
   * byte) nor the last delimiter wanted, with one popcount per pair, then single words with
   * exact masks. Any row the fast path does not take goes through slowRecord, from its start.
   */
  private fastRows(p: number, lim: number, stop: number): number {
    const buf = this.buf;
    const w32 = this.w32;
    const d = this.delim;
    const dPat = Math.imul(d, 0x01010101);
    const nf = this.nf;
    const k = this.k;
    const idx = this.idx;
    const tv = this.tv;
    const tf = this.tf;
    const acc = this.acc;
    const sc = this.sc;
    const lastField = nf - 1;
    const maxRec = this.cfg.maxRecordBytes;
    rows: while (p < lim) {
      if (p >= stop) { return p; }
      const rowStart = p;
      let c = buf[p];
      if (k === 0 || c === 10 || c === 13) {
        // Blank or all-empty rows are not records: only the exact parser tells them apart.
        p = this.slowRecord(p, lim, false);
        continue;
      }
      let f = 0;
      let ended = false;
      for (let j = 0; j < k; j++) {
        let n = idx[j] - f;
        if (n > 0) {
          // Go just past the n-th delimiter from p, unless the line feed comes first.
          let wi = p >> 2;
          let w = w32[wi];
          let low = -1 << ((p & 3) << 3);
          let md = 0;
          for (;;) {
            // One word exactly (bytes before p masked off).
            const x = w ^ dPat;
            const y = w ^ LF_PAT;
            md = ~(((x & HI) + HI) | x | HI) & low;
            const mn = ~(((y & HI) + HI) | y | HI) & low;
            if (mn !== 0) { md &= (mn & -mn) - 1; }
            const cw = Math.imul(md >>> 7, 0x01010101) >>> 24;
            if (cw >= n) { break; }
            if (mn !== 0) {
              p = this.reject(rowStart, lim, j);
              continue rows;
            }
            n -= cw;
            // Two words per turn while neither holds a byte below 11.
            let w0 = 0;
            let w1 = 0;
            for (;;) {
              w0 = w32[wi + 1];
              w1 = w32[wi + 2];
              // A byte below 11 in either word leaves one below 11 in their AND (text may give false alarms).
              const both = w0 & w1;
              if ((((both - B11) & ~both) & M80) !== 0) { break; }
              const x0 = w0 ^ dPat;
              const x1 = w1 ^ dPat;
              const m0 = ~(((x0 & HI) + HI) | x0 | HI);
              const m1 = ~(((x1 & HI) + HI) | x1 | HI);
              const c2 = Math.imul((m0 >>> 7) + (m1 >>> 7), 0x01010101) >>> 24;
              if (c2 >= n) {
                // In the first word or the second: chosen without a branch (t is 0 or -1).
                const c0 = Math.imul(m0 >>> 7, 0x01010101) >>> 24;
                const t = (c0 - n) >> 31;
                md = m0 ^ ((m0 ^ m1) & t);
                n -= c0 & t;
                wi += 1 - t;
                low = 0;
                break;
              }
              n -= c2;
              wi += 2;
            }
            if (low === 0) { break; }
            w = w0;
            wi++;
            low = -1;
          }
          // The n-th flag of md: the first byte whose running count of flags reaches n.
          const z = Math.imul(md >>> 7, 0x01010101) ^ Math.imul(n, 0x01010101);
          const zm = ~(((z & HI) + HI) | z | HI);
          p = (wi << 2) + ((31 - Math.clz32(zm & -zm)) >> 3) + 1;
          f = idx[j];
        }
        // The number: integer arithmetic while it has at most 9 digits, a branch-free sign.
        c = buf[p];
        const neg = +(c === 45);
        p += neg;
        const s = p;
        let v = 0;
        c = buf[p];
        while ((c - 48) >>> 0 < 10) {
          v = (v * 10 + (c - 48)) | 0;
          c = buf[++p];
        }
        let nd = p - s;
        let fr = 0;
        if (c === 46) {
          const s2 = ++p;
          c = buf[p];
          while ((c - 48) >>> 0 < 10) {
            v = (v * 10 + (c - 48)) | 0;
            c = buf[++p];
          }
          fr = p - s2;
          nd += fr;
        }
        let val = (v ^ -neg) + neg;
        if (nd - 1 >>> 0 > 8) {
          // No digits, or more than 9: the exact parser for none or more than 15, doubles up to 15.
          if (nd === 0 || nd > 15) {
            p = this.reject(rowStart, lim, j);
            continue rows;
          }
          let u = 0;
          for (let q = s; q < p; q++) {
            const e = buf[q];
            if (e !== 46) { u = u * 10 + (e - 48); }
          }
          val = neg === 0 ? u : -u;
        }
        tv[j] = val;
        tf[j] = fr;
        if (c === d) {
          p++;
          f++;
        } else if (f === lastField && (c === 10 || (c === 13 && buf[p + 1] === 10))) {
          p += c === 10 ? 1 : 2;
          ended = true;
        } else {
          p = this.reject(rowStart, lim, j);
          continue rows;
        }
        // Added at once (taken back by reject if the row goes to the exact parser after all).
        if (fr === sc[j]) {
          const a = acc[j] + val;
          acc[j] = a;
          if (Math.abs(a) >= FLUSH) { this.flush(j); }
        } else { this.addNumber(j, val, fr); }
        if (ended) { break; }
      }
      if (!ended) {
        // The rest of the row: exactly lastField - f more delimiters, then the line feed.
        let n = lastField - f;
        let wi = p >> 2;
        let w = w32[wi];
        let x = w ^ dPat;
        let y = w ^ LF_PAT;
        const low = -1 << ((p & 3) << 3);
        let md = ~(((x & HI) + HI) | x | HI) & low;
        let mn = ~(((y & HI) + HI) | y | HI) & low;
        for (;;) {
          if (mn !== 0) {
            md &= (mn & -mn) - 1;
            n -= Math.imul(md >>> 7, 0x01010101) >>> 24;
            break;
          }
          n -= Math.imul(md >>> 7, 0x01010101) >>> 24;
          if (n < 0) { break; }
          for (;;) {
            const w0 = w32[wi + 1];
            const w1 = w32[wi + 2];
            const both = w0 & w1;
            if ((((both - B11) & ~both) & M80) !== 0) { break; }
            const x0 = w0 ^ dPat;
            const x1 = w1 ^ dPat;
            const m = (~(((x0 & HI) + HI) | x0 | HI) >>> 7) + (~(((x1 & HI) + HI) | x1 | HI) >>> 7);
            n -= Math.imul(m, 0x01010101) >>> 24;
            wi += 2;
          }
          w = w32[++wi];
          x = w ^ dPat;
          y = w ^ LF_PAT;
          md = ~(((x & HI) + HI) | x | HI);
          mn = ~(((y & HI) + HI) | y | HI);
        }
        if (n !== 0) {
          // Ragged, or a delimiter count the exact parser must judge.
          p = this.reject(rowStart, lim, k);
          continue;
        }
        p = (wi << 2) + ((31 - Math.clz32(mn & -mn)) >> 3) + 1;
      }
      if (p - rowStart > maxRec) {
        p = this.reject(rowStart, lim, k); // LINE_TOO_LONG, from the exact parser
        continue;
      }
      this.fastCount++;
      this.rows++;
      this.records++;
    }
    return p;
  }

  /** Plain rows through the WebAssembly fast path; each row it does not take goes through fastRows. */
  private simdRows(p: number, lim: number, stop: number): number {
    const simd = this.simd as SimdRows;
    while (p < lim && p < stop) {
      if (!this.simdScales) {
        simd.scales(this.sc);
        this.simdScales = true;
      }
      p = simd.rows(p, lim, stop, this.cfg.maxRecordBytes);
      const n = simd.taken;
      if (n > 0) {
        this.rows += n;
        this.records += n;
        this.fastCount += n;
        simd.takeSums(this.big);
      }
      // fastRows takes the row it stopped at; and the rest of [p, lim) too when such rows come thick here.
      if (simd.otherRow) { p = this.fastRows(p, n < SIMD_MIN_RUN ? lim : this.view.indexOf(10, p) + 1, stop); }
    }
    return p;
  }

  /**
   * Double-encoded rows from p: `"`, the record written as CSV once more with its quotes doubled,
   * `"`, a line feed. One pass over the outer bytes, `""` being the inner quote; no copy. It takes
   * only rows of a plain shape (each inner field unquoted, or quoted without quotes inside; the
   * summed ones numbers), ending before end and before the first NUL; it returns the start of the
   * first row it does not take, which then goes through slowRecord.
   */
  private deRows(p: number, end: number, stop: number): number {
    const b = this.all; // the whole ArrayBuffer: reads past end meet the sentinel quotes
    const w32 = this.w32;
    const d = this.delim;
    const dPat = Math.imul(d, 0x01010101);
    const lim = Math.min(end, this.nulPos);
    const k = this.k;
    const idx = this.idx;
    const lastField = this.nf - 1;
    const maxRec = this.cfg.maxRecordBytes;
    const tI = this.tI;
    const tF1 = this.tF1;
    const tF2 = this.tF2;
    const tf = this.tf;
    b.fill(34, end, end + 8); // sentinel: every scan below stops at end
    rows: while (p < lim) {
      if (p >= stop || b[p] !== 34) { return p; }
      const rowStart = p;
      p++;
      let f = 0;
      let j = 0;
      let target = idx[0];
      for (;;) {
        let c = b[p];
        let quoted = 0;
        if (c === 34) {
          // `""` opens an inner quoted field; `"""`, or a lone `"` (the outer quote closing on an empty field): the exact parser.
          if (b[p + 1] !== 34 || b[p + 2] === 34) { return rowStart; }
          quoted = 1;
          p += 2;
          c = b[p];
        }
        if (f === target) {
          // A summed field: [-]digits[.digits], integer part up to 15 digits, fraction up to 24.
          const neg = +(c === 45);
          p += neg;
          const s0 = p;
          let vi = 0;
          c = b[p];
          while ((c - 48) >>> 0 < 10) {
            vi = vi * 10 + (c - 48);
            c = b[++p];
          }
          let nd = p - s0;
          if (nd > 15) { return rowStart; }
          let v1 = 0;
          let v2 = 0;
          let fr = 0;
          if (c === 46) {
            const s1 = ++p;
            const e1 = s1 + 12;
            c = b[p];
            while ((c - 48) >>> 0 < 10 && p < e1) {
              v1 = v1 * 10 + (c - 48);
              c = b[++p];
            }
            const n1 = p - s1;
            v1 *= POW10[12 - n1];
            const s2 = p;
            while ((c - 48) >>> 0 < 10) {
              v2 = v2 * 10 + (c - 48);
              c = b[++p];
            }
            const n2 = p - s2;
            if (n2 > 12) { return rowStart; }
            v2 *= POW10[12 - n2];
            fr = n1 + n2;
            nd += fr;
          }
          if (nd === 0) { return rowStart; }
          tI[j] = neg === 0 ? vi : -vi;
          tF1[j] = neg === 0 ? v1 : -v1;
          tF2[j] = neg === 0 ? v2 : -v2;
          tf[j] = fr;
          j++;
          target = j < k ? idx[j] : -1;
          if (quoted !== 0) {
            if (c !== 34 || b[p + 1] !== 34) { return rowStart; }
            p += 2;
            c = b[p];
          }
        } else if (quoted !== 0) {
          // Skip to the next quote, a word at a time: it must close the inner field (`""`).
          let wi = p >> 2;
          let low = -1 << ((p & 3) << 3);
          let m = 0;
          for (;;) {
            const y = w32[wi] ^ 0x22222222;
            m = ~(((y & HI) + HI) | y | HI) & low;
            if (m !== 0) { break; }
            wi++;
            low = -1;
          }
          p = (wi << 2) + ((31 - Math.clz32(m & -m)) >> 3);
          if (b[p + 1] !== 34) { return rowStart; }
          p += 2;
          c = b[p];
        } else {
          // Skip to the next delimiter or quote, a word at a time.
          let wi = p >> 2;
          let low = -1 << ((p & 3) << 3);
          let m = 0;
          for (;;) {
            const w = w32[wi];
            const x = w ^ dPat;
            const y = w ^ 0x22222222;
            m = (~(((x & HI) + HI) | x | HI) | ~(((y & HI) + HI) | y | HI)) & low;
            if (m !== 0) { break; }
            wi++;
            low = -1;
          }
          p = (wi << 2) + ((31 - Math.clz32(m & -m)) >> 3);
          c = b[p];
        }
        // After the field: the delimiter, or the outer quote closing and the line feed.
        if (c === d) {
          p++;
          f++;
          continue;
        }
        if (c !== 34) { return rowStart; }
        c = b[p + 1];
        if (c === 10) { p += 2; }
        else if (c === 13 && b[p + 2] === 10) { p += 3; }
        else { return rowStart; }
        break;
      }
      if (f !== lastField || j !== k || p > lim || p - rowStart > maxRec) { return rowStart; }
      this.addParts();
      continue rows;
    }
    return p;
  }

  /** Add the parts of one double-encoded row's summed fields (tI, tF1, tF2, tf) to the sums. */
  private addParts(): void {
    const { lI, lF1, lF2, lFr, tI, tF1, tF2, tf, cnt } = this;
    for (let j = 0; j < this.k; j++) {
      const a = lI[j] + tI[j];
      const a1 = lF1[j] + tF1[j];
      const a2 = lF2[j] + tF2[j];
      lI[j] = a;
      lF1[j] = a1;
      lF2[j] = a2;
      if (a >= FLUSH || a <= -FLUSH || a1 >= FLUSH || a1 <= -FLUSH || a2 >= FLUSH || a2 <= -FLUSH) { this.flushParts(j); }
      if (tf[j] > lFr[j]) { lFr[j] = tf[j]; }
      cnt[j]++;
    }
    this.rows++;
    this.records++;
  }

  private flushParts(j: number): void {
    this.lBig[j] += BigInt(this.lI[j]) * 10n ** 24n + BigInt(this.lF1[j]) * 10n ** 12n + BigInt(this.lF2[j]);
    this.lI[j] = 0;
    this.lF1[j] = 0;
    this.lF2[j] = 0;
  }

  /** Take back the first n summed fields of a row the fast path added, and send the row through the exact parser. */
  private reject(rowStart: number, lim: number, n: number): number {
    for (let j = 0; j < n; j++) { this.addNumber(j, -this.tv[j], this.tf[j]); }
    return this.slowRecord(rowStart, lim, false);
  }

  private flush(j: number): void {
    this.big[j] += BigInt(this.acc[j]);
    this.acc[j] = 0;
  }

  private rescale(j: number, scale: number): void {
    this.big[j] = (this.big[j] + BigInt(this.acc[j])) * 10n ** BigInt(scale - this.sc[j]);
    this.acc[j] = 0;
    this.sc[j] = scale;
    this.simdScales = false;
  }

  /** Add v·10^-scale to column j; v is an exact integer below 2^52 in magnitude. */
  private addNumber(j: number, v: number, scale: number): void {
    if (scale > this.sc[j]) { this.rescale(j, scale); }
    const shift = this.sc[j] - scale;
    const m = shift <= 22 ? v * POW10[shift] : Infinity;
    if (m < FLUSH && m > -FLUSH) {
      const a = this.acc[j] + m;
      this.acc[j] = a;
      if (a >= FLUSH || a <= -FLUSH) { this.flush(j); }
    } else { this.big[j] += BigInt(v) * 10n ** BigInt(shift); }
  }

  private addBig(j: number, v: bigint, scale: number): void {
    if (scale > this.sc[j]) { this.rescale(j, scale); }
    this.big[j] += v * 10n ** BigInt(this.sc[j] - scale);
  }

  /** One record through the exact parser; returns the position after it, or -1 if it is not complete yet. */
  private slowRecord(p: number, end: number, eof: boolean): number {
    const r = this.parseRecord(this.buf, p, end, eof, this.scratch, false);
    if (r < 0) { return -1; }
    if (r - p > this.cfg.maxRecordBytes) {
      const mib = Math.round((this.cfg.maxRecordBytes / 1048576) * 10) / 10;
      throw this.fail('LINE_TOO_LONG', undefined, `the record is longer than ${mib} MiB; is a quote left open?`);
    }
    if (this.nulPos < r && this.nulPos >= p) {
      throw this.fail('NOT_TEXT', undefined, 'the row holds a NUL byte; this is not a text file');
    }
    let src = this.scratch;
    if (this.nFields === 1 && this.nf > 1 && this.f0end > 0 && this.scratch.subarray(0, this.f0end).includes(this.delim)) {
      // A double-encoded row: the whole record was quoted once more; parse its content again.
      const n = this.f0end;
      if (this.scratch2.length < n) { this.scratch2 = Buffer.allocUnsafeSlow(Math.max(n, this.scratch.length)); }
      this.parseRecord(this.scratch, 0, n, true, this.scratch2, true);
      src = this.scratch2;
    }
    if (this.allEmpty) {
      this.records++;
      return r;
    }
    if (this.nFields !== this.nf) {
      throw this.fail('RAGGED_ROW', undefined, `the row has ${this.nFields} fields but the ${this.cfg.header ? 'header' : 'first row'} has ${this.nf}`);
    }
    for (let j = 0; j < this.k; j++) {
      if (this.ce[j] > this.cs[j]) { this.addCell(j, src, this.cs[j], this.ce[j]); }
    }
    this.rows++;
    this.records++;
    return r;
  }

  /** Parse one summed cell exactly and add it; blank cells are skipped. */
  private addCell(j: number, b: Buffer, s0: number, e0: number): void {
    let s = s0;
    let e = e0;
    while (s < e && (b[s] === 32 || b[s] === 9)) { s++; }
    while (e > s && (b[e - 1] === 32 || b[e - 1] === 9)) { e--; }
    if (s === e) { return; }
    let p = s;
    let neg = false;
    if (b[p] === 45) {
      neg = true;
      p++;
    } else if (b[p] === 43) { p++; }
    const is = p;
    let v = 0;
    while (p < e && isDigit(b[p])) { v = v * 10 + (b[p++] - 48); }
    const ie = p;
    let fs = p;
    let fe = p;
    if (p < e && b[p] === 46) {
      fs = ++p;
      while (p < e && isDigit(b[p])) { v = v * 10 + (b[p++] - 48); }
      fe = p;
    }
    let ok = ie > is || fe > fs;
    let exp = 0;
    if (ok && p < e && (b[p] | 32) === 101) {
      p++;
      let eneg = false;
      if (p < e && (b[p] === 45 || b[p] === 43)) { eneg = b[p++] === 45; }
      const es = p;
      while (p < e && isDigit(b[p])) {
        if (exp < 1e9) { exp = exp * 10 + (b[p] - 48); }
        p++;
      }
      if (p === es) { ok = false; }
      if (eneg) { exp = -exp; }
    }
    if (!ok || p !== e) {
      const cell = b.subarray(s0, e0);
      if (cell.includes(0) || !isUtf8(cell)) {
        throw this.fail('NOT_TEXT', this.names[j], 'the cell is not UTF-8 text; is this a CSV file?');
      }
      throw this.fail('NON_NUMERIC', this.names[j], `${cellText(b, s0, e0)} is not a number`);
    }
    let scale = fe - fs - exp;
    let shift = 0;
    if (scale < 0) {
      shift = -scale;
      scale = 0;
    }
    if (scale > MAX_SCALE || shift > MAX_SHIFT) {
      throw this.fail('NON_NUMERIC', this.names[j], `${cellText(b, s0, e0)} is outside the supported range (exponent too large)`);
    }
    this.cnt[j]++;
    if (v < FLUSH && shift <= 22 && v * POW10[shift] < FLUSH) {
      const m = v * POW10[shift];
      this.addNumber(j, neg ? -m : m, scale);
      return;
    }
    const digits = b.toString('latin1', is, ie) + b.toString('latin1', fs, fe);
    let m = BigInt(digits) * 10n ** BigInt(shift);
    if (neg) { m = -m; }
    this.addBig(j, m, scale);
  }

  /**
   * RFC 4180 parse of one record at src[p, end) into out (unescaped), noting where summed
   * fields lie. Returns the position after the record's line feed, or -1 when the record may
   * continue past end. `inner` parses the content of a double-encoded row, where a line feed is data.
   */
  private parseRecord(src: Buffer, p: number, end: number, eof: boolean, out: Buffer, inner: boolean): number {
    const d = this.delim;
    const nf = this.nf;
    const slotOf = this.slotOf;
    const cs = this.cs;
    const ce = this.ce;
    const collect = this.collect;
    for (let j = 0; j < this.k; j++) { cs[j] = ce[j] = 0; }
    let o = 0;
    let field = 0;
    let allEmpty = true;
    let f0end = 0;
    for (;;) {
      const fs = o;
      if (p < end && src[p] === 34) {
        p++;
        for (;;) {
          if (p >= end) {
            if (!eof) { return -1; }
            throw this.fail('UNTERMINATED_QUOTE', undefined, 'a quoted field opens in this row and is never closed');
          }
          const c = src[p];
          if (c === 34) {
            if (p + 1 < end) {
              if (src[p + 1] === 34) {
                out[o++] = 34;
                p += 2;
                continue;
              }
              p++;
              break;
            }
            if (!eof) { return -1; }
            p++;
            break;
          }
          out[o++] = c;
          p++;
        }
      }
      // Unquoted text, or text after a closing quote (kept as is, leniently).
      const us = o;
      let more = false;
      let term = false;
      for (;;) {
        if (p >= end) {
          if (!eof) { return -1; }
          term = true;
          break;
        }
        const c = src[p];
        if (c === d) {
          p++;
          more = true;
          break;
        }
        if (c === 10 && !inner) {
          p++;
          term = true;
          break;
        }
        out[o++] = c;
        p++;
      }
      if (term && !inner && o > us && out[o - 1] === 13) { o--; }
      if (o > fs) { allEmpty = false; }
      if (field < nf) {
        const j = slotOf[field];
        if (j >= 0) {
          cs[j] = fs;
          ce[j] = o;
        }
      }
      if (field === 0) { f0end = o; }
      if (collect) { collect.push(Buffer.from(out.subarray(fs, o))); }
      field++;
      if (!more) { break; }
    }
    this.nFields = field;
    this.allEmpty = allEmpty;
    this.f0end = f0end;
    return p;
  }

  /** Per-column results: exact sums as decimal text at the column's scale. */
  columns(): { name: string; index: number; sum: string; value: number; count: number }[] {
    const out = [];
    for (let j = 0; j < this.k; j++) {
      const [total, scale] = this.total(j);
      const sum = formatScaled(total, scale);
      out.push({ name: this.names[j], index: this.idx[j], sum, value: Number(sum), count: this.cnt[j] + this.fastCount });
    }
    return out;
  }
}

/** Add partial sums (from byte ranges of one file) into one exact result. */
export function mergePartials(layout: Layout, parts: PartialSums[]): { rows: number; columns: { name: string; index: number; sum: string; value: number; count: number }[] } {
  const columns = layout.indices.map((index, j) => {
    let scale = 0;
    for (const p of parts) { scale = Math.max(scale, p.scales[j]); }
    let total = 0n;
    let count = 0;
    for (const p of parts) {
      total += BigInt(p.sums[j]) * 10n ** BigInt(scale - p.scales[j]);
      count += p.counts[j];
    }
    const sum = formatScaled(total, scale);
    return { name: layout.names[j], index, sum, value: Number(sum), count };
  });
  return { rows: parts.reduce((n, p) => n + p.rows, 0), columns };
}
