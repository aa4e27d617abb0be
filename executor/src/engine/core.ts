import { isUtf8 } from 'node:buffer';

/*
 * The summing engine. Pure: it takes bytes and returns sums, and imports nothing
 * from @decisum/shared so that worker threads can load it under ts-node too.
 *
 * Layout of the work: bytes land in one reused, 4-byte-aligned buffer. Rows with no
 * quote or NUL take the fast path (delimiters counted a word at a time, summed
 * fields parsed by hand into scaled integers). Any other row, or a row the fast path
 * does not like (spaces, '+', exponents, empty or ragged fields, long numbers), goes
 * through the exact RFC 4180 record parser, which is also the only path that raises
 * errors, so both paths agree on what a file means.
 *
 * Row numbers: 1-based physical records of the file, the header (or first line)
 * being row 1; blank and all-empty records count as rows but are not summed.
 */

export type CsvErrorCode = 'NON_NUMERIC' | 'RAGGED_ROW' | 'UNTERMINATED_QUOTE' | 'NOT_TEXT' | 'LINE_TOO_LONG' | 'EMPTY_FILE';

export function csvErrorMessage(row: number | undefined, column: string | undefined, reason: string): string {
  if (row === undefined) return reason;
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
/** Accumulators move to BigInt past this, so an addend below 2^52 can never make a double inexact. */
const FLUSH = 4503599627370496; // 2^52
const MAX_SCALE = 1000;
const MAX_SHIFT = 1000;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const POW10: number[] = [];
for (let i = 0, v = 1; i <= 22; i++, v *= 10) POW10.push(v);

function isDigit(c: number): boolean {
  return (c - 48) >>> 0 < 10;
}

function alignedBuffer(size: number): Buffer {
  // allocUnsafeSlow gives the Buffer its own ArrayBuffer at offset 0, so an Int32Array view lines up.
  return Buffer.allocUnsafeSlow((size + 3) & ~3);
}

/*
 * SWAR over an Int32Array view: a byte equal to the pattern's byte becomes 0x80 in the mask,
 * exactly. The fast region always ends with a line feed inside the buffer, and the buffer's
 * length is a multiple of 4, so whole words can be read from the word holding p up to that
 * line feed: no byte-by-byte prologue or tail. Bytes before p are masked off.
 */

/** Position after the n-th delimiter from p (n ≥ 1), or -1 if the line feed comes first. */
function skipFields(w32: Int32Array, p: number, n: number, dPat: number): number {
  let wi = p >> 2;
  const low = -1 << ((p & 3) << 3);
  let w = w32[wi];
  let x = w ^ dPat;
  let y = w ^ LF_PAT;
  let md = ~(((x & HI) + HI) | x | HI) & low;
  let mn = ~(((y & HI) + HI) | y | HI) & low;
  for (;;) {
    if (mn !== 0) md &= (mn & -mn) - 1;
    if (md !== 0) {
      const cnt = Math.imul(md >>> 7, 0x01010101) >>> 24;
      if (cnt >= n) {
        while (--n > 0) md &= md - 1;
        return (wi << 2) + ((31 - Math.clz32(md & -md)) >> 3) + 1;
      }
      n -= cnt;
    }
    if (mn !== 0) return -1;
    // Two words per turn while neither holds the line feed nor the last delimiter wanted.
    for (;;) {
      const w0 = w32[wi + 1];
      const w1 = w32[wi + 2];
      const x0 = w0 ^ dPat;
      const y0 = w0 ^ LF_PAT;
      const x1 = w1 ^ dPat;
      const y1 = w1 ^ LF_PAT;
      const mn0 = ~(((y0 & HI) + HI) | y0 | HI);
      const mn1 = ~(((y1 & HI) + HI) | y1 | HI);
      if ((mn0 | mn1) !== 0) break;
      const md0 = ~(((x0 & HI) + HI) | x0 | HI);
      const md1 = ~(((x1 & HI) + HI) | x1 | HI);
      const c = (Math.imul(md0 >>> 7, 0x01010101) >>> 24) + (Math.imul(md1 >>> 7, 0x01010101) >>> 24);
      if (c >= n) break;
      n -= c;
      wi += 2;
    }
    w = w32[++wi];
    x = w ^ dPat;
    y = w ^ LF_PAT;
    md = ~(((x & HI) + HI) | x | HI);
    mn = ~(((y & HI) + HI) | y | HI);
  }
}

/** Position after the line feed that follows exactly n more delimiters, or -1. */
function toLineEnd(w32: Int32Array, p: number, n: number, dPat: number): number {
  let wi = p >> 2;
  const low = -1 << ((p & 3) << 3);
  let w = w32[wi];
  let x = w ^ dPat;
  let y = w ^ LF_PAT;
  let md = ~(((x & HI) + HI) | x | HI) & low;
  let mn = ~(((y & HI) + HI) | y | HI) & low;
  for (;;) {
    if (mn !== 0) {
      md &= (mn & -mn) - 1;
      n -= Math.imul(md >>> 7, 0x01010101) >>> 24;
      return n === 0 ? (wi << 2) + ((31 - Math.clz32(mn & -mn)) >> 3) + 1 : -1;
    }
    n -= Math.imul(md >>> 7, 0x01010101) >>> 24;
    if (n < 0) return -1;
    w = w32[++wi];
    x = w ^ dPat;
    y = w ^ LF_PAT;
    md = ~(((x & HI) + HI) | x | HI);
    mn = ~(((y & HI) + HI) | y | HI);
  }
}

/** End of the line starting at p, counting a line feed inside quotes as content; -1 if none. */
function quotedLineEnd(buf: Buffer, p: number, end: number): number {
  let inQ = false;
  for (; p < end; p++) {
    const c = buf[p];
    if (c === 34) inQ = !inQ;
    else if (c === 10 && !inQ) return p + 1;
  }
  return -1;
}

function countDelims(buf: Uint8Array, s: number, e: number): number[] {
  const counts = [0, 0, 0, 0];
  let inQ = false;
  for (let p = s; p < e; p++) {
    const c = buf[p];
    if (c === 34) inQ = !inQ;
    else if (!inQ) {
      const i = DELIMS.indexOf(c);
      if (i >= 0) counts[i]++;
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
        if (buf[p + 1] !== 34) break;
        p++;
      }
      inner.push(buf[p]);
    }
    counts = countDelims(Uint8Array.from(inner), 0, inner.length);
  }
  let best = 0;
  for (let i = 1; i < 4; i++) if (counts[i] > counts[best]) best = i;
  return DELIMS[best];
}

/** Exact decimal text of an integer scaled by 10^scale; the scale is kept, trailing zeros included. */
export function formatScaled(total: bigint, scale: number): string {
  const neg = total < 0n;
  let s = (neg ? -total : total).toString();
  if (scale > 0) {
    if (s.length <= scale) s = '0'.repeat(scale - s.length + 1) + s;
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

  private buf: Buffer;
  private w32: Int32Array;
  private len = 0;
  /** Stream offset of buf[0]. */
  private base = 0;
  private scratch: Buffer;
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
  private tv = new Float64Array(0);
  private tf = new Int32Array(0);
  private cs = new Int32Array(0);
  private ce = new Int32Array(0);

  // Set by parseRecord.
  private nFields = 0;
  private allEmpty = true;
  private f0end = 0;
  private collect: Buffer[] | null = null;

  private qPos = -1;
  private nulPos = -1;
  private view: Buffer;

  constructor(private readonly cfg: EngineConfig) {
    const size = cfg.bufferBytes ?? 1 << 20;
    this.buf = alignedBuffer(size);
    this.w32 = new Int32Array(this.buf.buffer, 0, this.buf.length >> 2);
    this.scratch = Buffer.allocUnsafeSlow(this.buf.length);
    this.scratch2 = Buffer.allocUnsafeSlow(0);
    this.view = this.buf.subarray(0, 0);
    if (cfg.layout) this.setLayout(cfg.layout);
  }

  /** Free space to read into; call commit(n) after writing n bytes at its start. */
  space(): Buffer {
    return this.buf.subarray(this.len);
  }

  commit(n: number): void {
    this.len += n;
    if (this.len === this.buf.length && !this.done) this.run(false);
  }

  push(chunk: Uint8Array): void {
    if (this.finished) throw new Error('push after finish');
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
    if (this.finished) return;
    this.finished = true;
    if (!this.done) this.run(true);
    if (this.phase === PHASE_HEADER) throw this.emptyFile();
    if (!this.done) this.boundary = this.base + this.len;
  }

  partial(): PartialSums {
    const sums: string[] = [];
    for (let j = 0; j < this.k; j++) sums.push((this.big[j] + BigInt(this.acc[j])).toString());
    return { rows: this.rows, records: this.records, sums, scales: Array.from(this.sc), counts: Array.from(this.cnt) };
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
      if (this.qPos < p) this.qPos = this.find(34, p, end);
      if (this.nulPos < p) this.nulPos = this.find(0, p, end);
      const special = Math.min(this.qPos, this.nulPos);
      // Rows wholly before the first quote or NUL can take the fast path.
      // (Word-at-a-time skipping assumes little-endian words; elsewhere every row takes the exact path.)
      const lim = special > p && LITTLE_ENDIAN ? this.view.lastIndexOf(10, special - 1) + 1 : p;
      if (lim > p) {
        p = this.fastRows(p, lim, stop);
        continue;
      }
      if (special === end && !eof) break; // an incomplete last line with nothing special in it
      const r = this.slowRecord(p, end, eof);
      if (r < 0) break;
      p = r;
    }
    if (eof && !this.done && p >= end) this.boundary = this.base + end;
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
    if (p > 0) this.buf.copyWithin(0, p, this.len);
    this.base += p;
    this.len = rest;
    if (rest > this.buf.length >> 1) {
      const next = alignedBuffer(this.buf.length * 2);
      this.buf.copy(next, 0, 0, rest);
      this.buf = next;
      this.w32 = new Int32Array(next.buffer, 0, next.length >> 2);
      this.scratch = Buffer.allocUnsafeSlow(next.length);
    }
  }

  private readHeader(eof: boolean): number {
    const buf = this.buf;
    const end = this.len;
    let p = 0;
    if (!this.bomChecked) {
      if (end < 3 && !eof) return 0;
      this.bomChecked = true;
      if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) p = 3;
    }
    for (;;) {
      // Blank lines before the header are skipped (and counted as rows).
      if (p < end && buf[p] === 10) {
        p++;
        this.records++;
      } else if (p + 1 < end && buf[p] === 13 && buf[p + 1] === 10) {
        p += 2;
        this.records++;
      } else break;
    }
    if (p >= end || (end - p === 1 && buf[p] === 13)) {
      if (eof) throw this.emptyFile();
      return p;
    }
    let delim = this.cfg.delimiter;
    if (delim === undefined) {
      const lineEnd = quotedLineEnd(buf, p, end);
      if (lineEnd < 0 && !eof) return p;
      delim = detectDelimiter(buf, p, lineEnd < 0 ? end : lineEnd);
    }
    this.delim = delim;
    this.nf = 0;
    const fields: Buffer[] = [];
    this.collect = fields;
    let r: number;
    try {
      r = this.parseRecord(buf, p, end, eof, this.scratch, false);
      if (r < 0) return p;
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
    if (!header) return p; // the first line is data: read it again as a record
    this.records++;
    return r;
  }

  /** Rows in [p, lim), each ending in a line feed with no quote or NUL before lim. */
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
    const cnt = this.cnt;
    const lastField = nf - 1;
    while (p < lim) {
      if (p >= stop) return p;
      const rowStart = p;
      if (k === 0 || buf[p] === 10 || buf[p] === 13) {
        // Blank or all-empty rows are not records: only the exact parser tells them apart.
        p = this.slowRecord(p, lim, false);
        continue;
      }
      let f = 0;
      let ok = true;
      let ended = false;
      for (let j = 0; j < k; j++) {
        const target = idx[j];
        if (target > f) {
          p = skipFields(w32, p, target - f, dPat);
          if (p < 0) {
            ok = false;
            break;
          }
          f = target;
        }
        let c = buf[p];
        const neg = +(c === 45);
        p += neg;
        const s = p;
        let v = 0;
        c = buf[p];
        while ((c - 48) >>> 0 < 10) {
          v = v * 10 + (c - 48);
          c = buf[++p];
        }
        let nd = p - s;
        let fr = 0;
        if (c === 46) {
          const s2 = ++p;
          c = buf[p];
          while ((c - 48) >>> 0 < 10) {
            v = v * 10 + (c - 48);
            c = buf[++p];
          }
          fr = p - s2;
          nd += fr;
        }
        if (nd === 0 || nd > 15) {
          ok = false;
          break;
        }
        tv[j] = v * (1 - 2 * neg);
        tf[j] = fr;
        if (c === d) {
          p++;
          f++;
        } else if (f === lastField && (c === 10 || (c === 13 && buf[p + 1] === 10))) {
          p += c === 10 ? 1 : 2;
          ended = true;
          break;
        } else {
          ok = false;
          break;
        }
      }
      if (ok && !ended) {
        p = f <= lastField ? toLineEnd(w32, p, lastField - f, dPat) : -1;
        ok = p >= 0;
      }
      if (!ok) {
        // The exact parser decides what this row means (and any error); it ends at the same line feed.
        p = this.slowRecord(rowStart, lim, false);
        continue;
      }
      for (let j = 0; j < k; j++) {
        if (tf[j] === sc[j]) {
          const a = acc[j] + tv[j];
          acc[j] = a;
          if (a >= FLUSH || a <= -FLUSH) this.flush(j);
        } else this.addNumber(j, tv[j], tf[j]);
        cnt[j]++;
      }
      this.rows++;
      this.records++;
    }
    return p;
  }

  private flush(j: number): void {
    this.big[j] += BigInt(this.acc[j]);
    this.acc[j] = 0;
  }

  private rescale(j: number, scale: number): void {
    this.big[j] = (this.big[j] + BigInt(this.acc[j])) * 10n ** BigInt(scale - this.sc[j]);
    this.acc[j] = 0;
    this.sc[j] = scale;
  }

  /** Add v·10^-scale to column j; v is an exact integer below 2^52 in magnitude. */
  private addNumber(j: number, v: number, scale: number): void {
    if (scale > this.sc[j]) this.rescale(j, scale);
    const shift = this.sc[j] - scale;
    const m = shift <= 22 ? v * POW10[shift] : Infinity;
    if (m < FLUSH && m > -FLUSH) {
      const a = this.acc[j] + m;
      this.acc[j] = a;
      if (a >= FLUSH || a <= -FLUSH) this.flush(j);
    } else this.big[j] += BigInt(v) * 10n ** BigInt(shift);
  }

  private addBig(j: number, v: bigint, scale: number): void {
    if (scale > this.sc[j]) this.rescale(j, scale);
    this.big[j] += v * 10n ** BigInt(this.sc[j] - scale);
  }

  /** One record through the exact parser; returns the position after it, or -1 if it is not complete yet. */
  private slowRecord(p: number, end: number, eof: boolean): number {
    let r = this.parseRecord(this.buf, p, end, eof, this.scratch, false);
    if (r < 0) return -1;
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
      if (this.scratch2.length < n) this.scratch2 = Buffer.allocUnsafeSlow(Math.max(n, this.scratch.length));
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
      if (this.ce[j] > this.cs[j]) this.addCell(j, src, this.cs[j], this.ce[j]);
    }
    this.rows++;
    this.records++;
    return r;
  }

  /** Parse one summed cell exactly and add it; blank cells are skipped. */
  private addCell(j: number, b: Buffer, s0: number, e0: number): void {
    let s = s0;
    let e = e0;
    while (s < e && (b[s] === 32 || b[s] === 9)) s++;
    while (e > s && (b[e - 1] === 32 || b[e - 1] === 9)) e--;
    if (s === e) return;
    let p = s;
    let neg = false;
    if (b[p] === 45) {
      neg = true;
      p++;
    } else if (b[p] === 43) p++;
    const is = p;
    let v = 0;
    while (p < e && isDigit(b[p])) v = v * 10 + (b[p++] - 48);
    const ie = p;
    let fs = p;
    let fe = p;
    if (p < e && b[p] === 46) {
      fs = ++p;
      while (p < e && isDigit(b[p])) v = v * 10 + (b[p++] - 48);
      fe = p;
    }
    let ok = ie > is || fe > fs;
    let exp = 0;
    if (ok && p < e && (b[p] | 32) === 101) {
      p++;
      let eneg = false;
      if (p < e && (b[p] === 45 || b[p] === 43)) eneg = b[p++] === 45;
      const es = p;
      while (p < e && isDigit(b[p])) {
        if (exp < 1e9) exp = exp * 10 + (b[p] - 48);
        p++;
      }
      if (p === es) ok = false;
      if (eneg) exp = -exp;
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
    if (neg) m = -m;
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
    for (let j = 0; j < this.k; j++) cs[j] = ce[j] = 0;
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
            if (!eof) return -1;
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
            if (!eof) return -1;
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
          if (!eof) return -1;
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
      if (term && !inner && o > us && out[o - 1] === 13) o--;
      if (o > fs) allEmpty = false;
      if (field < nf) {
        const j = slotOf[field];
        if (j >= 0) {
          cs[j] = fs;
          ce[j] = o;
        }
      }
      if (field === 0) f0end = o;
      if (collect) collect.push(Buffer.from(out.subarray(fs, o)));
      field++;
      if (!more) break;
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
      const sum = formatScaled(this.big[j] + BigInt(this.acc[j]), this.sc[j]);
      out.push({ name: this.names[j], index: this.idx[j], sum, value: Number(sum), count: this.cnt[j] });
    }
    return out;
  }
}

/** Add partial sums (from byte ranges of one file) into one exact result. */
export function mergePartials(layout: Layout, parts: PartialSums[]): { rows: number; columns: { name: string; index: number; sum: string; value: number; count: number }[] } {
  const columns = layout.indices.map((index, j) => {
    let scale = 0;
    for (const p of parts) scale = Math.max(scale, p.scales[j]);
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
