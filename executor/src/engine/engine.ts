import { addCell, type CellError } from './cell';
import { DoubleEncodedRows } from './double-encoded';
import { CsvError, lineTooLong, type CsvErrorCode } from './errors';
import { HeaderReader, type HeaderOptions, type Layout } from './header';
import { PlainRows } from './plain';
import { RecordParser } from './record';
import { LITTLE_ENDIAN, SLACK, type Scan } from './scan';
import { SimdRows } from './simd';
import { ColumnSums, type ColumnResult, type PartialSums } from './sums';

/*
 * The summing engine. Pure: it takes bytes and returns sums, and imports nothing from
 * @decisum/shared but the list of delimiters, so that worker threads load it alone.
 *
 * Bytes land in one reused, 4-byte-aligned read buffer, which lives in the memory of the
 * WebAssembly fast path (simd.ts). The header comes first (header.ts). Then each row takes one of
 * three paths: rows with no quote or NUL the plain fast path (plain.ts), rows opening with a quote
 * the double-encoded path (double-encoded.ts), and every row those do not take the exact RFC 4180
 * parser (record.ts, cell.ts), which alone raises errors, so all paths agree on what a file means.
 * The sums are exact (sums.ts).
 *
 * Row numbers: 1-based physical records of the file, the header (or first line)
 * being row 1; blank and all-empty records count as rows but are not summed.
 */

/** The header's options (what to sum, the limits) and how this engine reads. */
export interface EngineConfig extends HeaderOptions {
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

/** A read buffer of size bytes rounded up to whole words, with SLACK bytes of memory after it. */
function alignedBuffer(size: number, simd: SimdRows | null): Buffer {
  const n = (size + 3) & ~3;
  if (simd) { return simd.buffer(n, SLACK); }
  // allocUnsafeSlow gives the Buffer its own ArrayBuffer at offset 0, so an Int32Array view lines up.
  return Buffer.allocUnsafeSlow(n + SLACK).subarray(0, n);
}

export class Engine implements Scan {
  /** Data records summed so far (blank and all-empty records excluded). */
  rows = 0;
  /** Physical records consumed, header and blank ones included: the row number of the last one. */
  records = 0;
  /** Set once a stop offset was reached; boundary is then the stream offset of the first record not taken. */
  done = false;
  boundary = -1;
  layout: Layout | undefined;

  // Scan: what the row paths read (set by useBuffer and setLayout).
  buf!: Buffer;
  words!: Int32Array;
  bytes!: Uint8Array;
  delimiter = 44;
  fieldCount = 0;
  indices = new Int32Array(0);
  sums = new ColumnSums(0);
  readonly maxRecordBytes: number;
  nulPos = -1;

  private readonly simd: SimdRows | null;
  private readonly parser = new RecordParser();
  private readonly header: HeaderReader;
  private readonly plain: PlainRows;
  private readonly doubleEncoded: DoubleEncodedRows;
  private names: string[] = [];
  /** Bytes in buf, and the stream offset of buf[0]. */
  private len = 0;
  private base = 0;
  /** buf[0, len), for indexOf. */
  private view!: Buffer;
  private quotePos = -1;
  /** Where the exact parser writes a record, unescaped, and the content of a double-encoded one. */
  private scratch!: Buffer;
  private innerScratch = Buffer.allocUnsafeSlow(0);
  private finished = false;
  private readonly cellError: CellError = (code, j, reason) => this.fail(code, this.names[j], reason);

  constructor(private readonly cfg: EngineConfig) {
    this.maxRecordBytes = cfg.maxRecordBytes;
    // Typed-array views of WebAssembly memory read it as little-endian, as the host must be.
    // A header-only engine (the parallel runner's) never reaches a data row, so it needs no instance.
    this.simd = cfg.simd !== false && !cfg.headerOnly && LITTLE_ENDIAN ? (cfg.simdRows ?? new SimdRows()) : null;
    this.header = new HeaderReader(cfg, this.parser);
    this.plain = new PlainRows(this, this.simd);
    this.doubleEncoded = new DoubleEncodedRows(this);
    this.useBuffer(alignedBuffer(cfg.bufferBytes ?? 1 << 20, this.simd));
    if (cfg.layout) { this.setLayout(cfg.layout); }
  }

  /** An engine for a byte range of a file, starting at a record boundary with the layout its header gave. */
  static forRange(range: { layout: Layout; maxRecordBytes: number; bufferBytes: number; stopAt?: number }): Engine {
    const { layout, maxRecordBytes, bufferBytes, stopAt } = range;
    // No header is read, so step, offset and the header's limits are unused.
    return new Engine({ step: 1, offset: 0, header: false, maxRecordBytes, maxHeaderBytes: Infinity, maxColumns: Infinity, layout, bufferBytes, stopAt });
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
    if (!this.layout) { throw this.header.emptyFile(); }
    if (!this.done) { this.boundary = this.base + this.len; }
  }

  partial(): PartialSums {
    return this.sums.partial(this.rows, this.records);
  }

  /** Per-column results: exact sums as decimal text at the column's scale. */
  columns(): ColumnResult[] {
    return this.sums.results(this.names, this.indices);
  }

  /** Bytes consumed so far, as a stream offset. */
  get position(): number {
    return this.base;
  }

  /** One record through the exact parser, not at the end of the input (Scan). */
  exactRecord(p: number, end: number): number {
    return this.slowRecord(p, end, false);
  }

  private setLayout(layout: Layout): void {
    this.layout = layout;
    this.delimiter = layout.delimiter;
    this.fieldCount = layout.fieldCount;
    this.indices = Int32Array.from(layout.indices);
    this.names = layout.names;
    this.sums = new ColumnSums(layout.indices.length);
    this.parser.setLayout(layout.delimiter, layout.fieldCount, layout.indices);
    this.plain.setup();
    this.doubleEncoded.setup();
  }

  private fail(code: CsvErrorCode, column: string | undefined, reason: string): CsvError {
    return new CsvError(code, this.records + 1, column, reason);
  }

  private run(eof: boolean): void {
    const end = this.len;
    this.view = this.buf.subarray(0, end);
    this.quotePos = -1;
    this.nulPos = -1;
    let p = 0;
    if (!this.layout) {
      p = this.readHeader(eof);
      if (!this.layout || this.cfg.headerOnly) {
        this.keep(p, eof);
        return;
      }
    }
    p = this.dataRows(p, end, eof);
    if (eof && !this.done && p >= end) { this.boundary = this.base + end; }
    this.keep(p, eof);
  }

  /** The header from buf[0, len): where to go on from (data, or the header's start while it is incomplete). */
  private readHeader(eof: boolean): number {
    const step = this.header.read(this.buf, this.len, eof, this.records + 1, this.scratch);
    this.records += step.records;
    if (!step.layout) { return step.start; }
    this.setLayout(step.layout);
    if (this.cfg.headerOnly) {
      this.done = true;
      this.boundary = this.base + step.next;
    }
    return step.next;
  }

  /** Data rows from p, each through the path that takes it; returns where the unfinished record (if any) starts. */
  private dataRows(p: number, end: number, eof: boolean): number {
    const stop = this.cfg.stopAt === undefined ? Infinity : this.cfg.stopAt - this.base;
    while (p < end) {
      if (p >= stop) {
        this.done = true;
        this.boundary = this.base + p;
        break;
      }
      if (this.quotePos < p) { this.quotePos = this.find(34, p, end); }
      if (this.nulPos < p) { this.nulPos = this.find(0, p, end); }
      const special = Math.min(this.quotePos, this.nulPos);
      // Rows wholly before the first quote or NUL can take the fast path.
      const lim = special > p && LITTLE_ENDIAN ? this.view.lastIndexOf(10, special - 1) + 1 : p;
      if (lim > p) {
        p = this.plain.rows(p, lim, stop);
        continue;
      }
      if (special === end && !eof) { break; } // an incomplete last line with nothing special in it
      if (this.quotePos === p && this.nulPos > p && this.sums.columns > 0 && this.fieldCount > 1 && LITTLE_ENDIAN) {
        // A row opening with a quote: most likely double-encoded, like every row of the reference sample.
        const q = this.doubleEncoded.rows(p, end, stop);
        if (q > p) {
          p = q;
          continue;
        }
      }
      const r = this.slowRecord(p, end, eof);
      if (r < 0) { break; }
      p = r;
    }
    return p;
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
    if (rest > this.cfg.maxRecordBytes) { throw this.fail('LINE_TOO_LONG', undefined, lineTooLong(this.cfg.maxRecordBytes)); }
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
    this.words = new Int32Array(buf.buffer, buf.byteOffset, (buf.length + SLACK) >> 2);
    this.bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.length + SLACK);
    this.scratch = Buffer.allocUnsafeSlow(buf.length);
    this.view = buf.subarray(0, 0);
  }

  /** One record through the exact parser; returns the position after it, or -1 if it is not complete yet. */
  private slowRecord(p: number, end: number, eof: boolean): number {
    const parser = this.parser;
    const r = parser.parse(this.buf, p, end, eof, this.scratch, false, this.records + 1);
    if (r < 0) { return -1; }
    if (r - p > this.cfg.maxRecordBytes) { throw this.fail('LINE_TOO_LONG', undefined, lineTooLong(this.cfg.maxRecordBytes)); }
    if (this.nulPos < r && this.nulPos >= p) {
      throw this.fail('NOT_TEXT', undefined, 'the row holds a NUL byte; this is not a text file');
    }
    let src = this.scratch;
    if (parser.fields === 1 && this.fieldCount > 1 && parser.firstFieldEnd > 0 && this.scratch.subarray(0, parser.firstFieldEnd).includes(this.delimiter)) {
      // A double-encoded row: the whole record was quoted once more; parse its content again.
      const n = parser.firstFieldEnd;
      if (this.innerScratch.length < n) { this.innerScratch = Buffer.allocUnsafeSlow(Math.max(n, this.scratch.length)); }
      parser.parse(this.scratch, 0, n, true, this.innerScratch, true, this.records + 1);
      src = this.innerScratch;
    }
    if (parser.allEmpty) {
      this.records++;
      return r;
    }
    if (parser.fields !== this.fieldCount) {
      throw this.fail('RAGGED_ROW', undefined, `the row has ${parser.fields} fields but the ${this.cfg.header ? 'header' : 'first row'} has ${this.fieldCount}`);
    }
    for (let j = 0; j < this.sums.columns; j++) {
      if (parser.cellEnd[j] > parser.cellStart[j]) { addCell(this.sums, j, src, parser.cellStart[j], parser.cellEnd[j], this.cellError); }
    }
    this.rows++;
    this.records++;
    return r;
  }
}
