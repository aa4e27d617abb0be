import { isUtf8 } from 'node:buffer';
import { DELIMITERS } from '@decisum/shared/delimiters';
import { CsvError, lineTooLong, sizeText } from './errors';
import type { RecordParser } from './record';

/*
 * Header and layout detection: skip a BOM and blank lines, detect the delimiter, parse the header
 * record (looking inside a double-encoded one), and decide which fields are summed. Bounded: a
 * header over maxHeaderBytes, or one that would sum more than maxColumns columns, fails at once,
 * before the rest of the file is read.
 */

/** What the header decided; workers receive it so they can start mid-file. */
export interface Layout {
  delimiter: number;
  /** Fields per record, index column included. */
  fieldCount: number;
  /** 0-based field index of each summed column. */
  indices: number[];
  names: string[];
}

export interface HeaderOptions {
  step: number;
  offset: number;
  /** Detected when absent. */
  delimiter?: number;
  /** Whether the first record is a header (else it is data, and only fixes the layout). */
  header: boolean;
  maxRecordBytes: number;
  /** A header (or first row) longer than this fails with HEADER_TOO_LARGE. */
  maxHeaderBytes: number;
  /** A layout that sums more columns than this fails with TOO_MANY_COLUMNS. */
  maxColumns: number;
}

/** Where reading the header got to in buf[0, end). */
export interface HeaderStep {
  /** Blank lines (and the header itself, once read as one) taken: rows, for row numbers. */
  records: number;
  /** Where the header record starts (after a BOM and blank lines): keep from here when there is no layout yet. */
  start: number;
  /** Set once the header is read: then next is where data records begin. */
  layout?: Layout;
  next: number;
}

const DELIMITER_BYTES = DELIMITERS.map((d) => d.charCodeAt(0));

/** End of the line starting at p, counting a line feed inside quotes as content; -1 if none. */
function quotedLineEnd(buf: Uint8Array, p: number, end: number): number {
  let inQuotes = false;
  for (; p < end; p++) {
    const c = buf[p];
    if (c === 34) { inQuotes = !inQuotes; }
    else if (c === 10 && !inQuotes) { return p + 1; }
  }
  return -1;
}

function countDelimiters(buf: Uint8Array, s: number, e: number): number[] {
  const counts = DELIMITER_BYTES.map(() => 0);
  let inQuotes = false;
  for (let p = s; p < e; p++) {
    const c = buf[p];
    if (c === 34) { inQuotes = !inQuotes; }
    else if (!inQuotes) {
      const i = DELIMITER_BYTES.indexOf(c);
      if (i >= 0) { counts[i]++; }
    }
  }
  return counts;
}

/** The content of a quoted field at s (`""` unescaped), up to its closing quote or e. */
function unquoted(buf: Uint8Array, s: number, e: number): Uint8Array {
  const inner = new Uint8Array(e - s);
  let n = 0;
  for (let p = s + 1; p < e; p++) {
    if (buf[p] === 34) {
      if (buf[p + 1] !== 34) { break; }
      p++;
    }
    inner[n++] = buf[p];
  }
  return inner.subarray(0, n);
}

/** The delimiter of a header line: the candidate seen most often outside quotes, looking inside a double-encoded line. */
export function detectDelimiter(buf: Uint8Array, s: number, e: number): number {
  let counts = countDelimiters(buf, s, e);
  if (counts.every((c) => c === 0) && buf[s] === 34) {
    const inner = unquoted(buf, s, e);
    counts = countDelimiters(inner, 0, inner.length);
  }
  let best = 0;
  for (let i = 1; i < counts.length; i++) { if (counts[i] > counts[best]) { best = i; } }
  return DELIMITER_BYTES[best];
}

/** Position after the blank lines (LF or CRLF) from p, and how many there were. */
function skipBlankLines(buf: Uint8Array, p: number, end: number): [number, number] {
  let lines = 0;
  for (;;) {
    if (p < end && buf[p] === 10) { p++; }
    else if (p + 1 < end && buf[p] === 13 && buf[p + 1] === 10) { p += 2; }
    else { return [p, lines]; }
    lines++;
  }
}

/** Reads the header from the start of the input; one per engine, as a BOM is looked for once. */
export class HeaderReader {
  private bomChecked = false;

  constructor(
    private readonly options: HeaderOptions,
    private readonly parser: RecordParser,
  ) {}

  /**
   * Read the header from buf[0, end): its layout and where data begins, or, when the header is not
   * complete yet, where it starts. row is the row number the header would have, for errors.
   */
  read(buf: Buffer, end: number, eof: boolean, row: number, scratch: Buffer): HeaderStep {
    let p = 0;
    if (!this.bomChecked) {
      if (end < 3 && !eof) { return { records: 0, start: 0, next: 0 }; }
      this.bomChecked = true;
      if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) { p = 3; }
    }
    const [start, blank] = skipBlankLines(buf, p, end);
    const waiting: HeaderStep = { records: blank, start, next: start };
    row += blank;
    if (start >= end || (end - start === 1 && buf[start] === 13)) {
      if (eof) { throw this.emptyFile(); }
      return waiting;
    }
    const delimiter = this.options.delimiter ?? this.detect(buf, start, end, eof, row);
    if (delimiter === undefined) { return waiting; }
    const header = this.parseHeader(buf, start, end, eof, row, scratch, delimiter);
    if (!header) { return waiting; }
    const layout = this.layout(header.names, header.fields, delimiter, row);
    this.parser.setLayout(delimiter, layout.fieldCount, layout.indices);
    if (!this.options.header) { return { records: blank, start, layout, next: start }; } // the first line is data: read it again as a record
    return { records: blank + 1, start, layout, next: header.next };
  }

  private detect(buf: Buffer, start: number, end: number, eof: boolean, row: number): number | undefined {
    const lineEnd = quotedLineEnd(buf, start, end);
    if (lineEnd < 0 && !eof) {
      this.checkIncomplete(end - start, row);
      return undefined;
    }
    return detectDelimiter(buf, start, lineEnd < 0 ? end : lineEnd);
  }

  /** Fails the header that has grown past the limit without ending. */
  private checkIncomplete(bytes: number, row: number): void {
    if (bytes > this.options.maxHeaderBytes) { throw this.tooLarge(row); }
  }

  /**
   * The header record's fields (one double-encoded field parsed again when the data rows are written
   * so too), and where the record after it starts; undefined while more bytes are needed.
   */
  private parseHeader(buf: Buffer, start: number, end: number, eof: boolean, row: number, scratch: Buffer, delimiter: number) {
    const parser = this.parser;
    parser.setLayout(delimiter, 0, []);
    const bounds: number[] = [];
    parser.bounds = bounds;
    let next: number;
    try {
      next = parser.parse(buf, start, end, eof, scratch, false, row);
    } finally {
      parser.bounds = null;
    }
    if (next < 0) {
      this.checkIncomplete(end - start, row);
      return undefined;
    }
    if (next - start > this.options.maxHeaderBytes) { throw this.tooLarge(row); }
    if (next - start > this.options.maxRecordBytes) { throw new CsvError('LINE_TOO_LONG', row, undefined, lineTooLong(this.options.maxRecordBytes)); }
    let names = scratch;
    if (bounds.length === 2 && names.subarray(0, bounds[1]).includes(delimiter)) {
      // Without a header the first row is data and says so itself.
      const doubleEncoded = this.options.header ? this.dataRowsDoubleEncoded(buf, next, end, eof, row + 1, delimiter) : true;
      if (doubleEncoded === undefined) { return undefined; }
      if (doubleEncoded) {
        // One field holding the delimiter, like the rows after it: the header written as CSV once more.
        names = Buffer.from(scratch.subarray(0, bounds[1]));
        bounds.length = 0;
        parser.bounds = bounds;
        try {
          parser.parse(names, 0, names.length, true, scratch, true, row);
        } finally {
          parser.bounds = null;
        }
        names = scratch;
      }
    }
    checkText(names, bounds, row, this.options.header);
    return { names, fields: bounds, next };
  }

  /**
   * Whether the first data record after a header of one field holding the delimiter is one such
   * field too (then both are double-encoded); undefined while it is not complete. A file of one
   * column whose name holds the delimiter (`"amount, EUR"`) is not double-encoded.
   */
  private dataRowsDoubleEncoded(buf: Buffer, p: number, end: number, eof: boolean, row: number, delimiter: number): boolean | undefined {
    const [q] = skipBlankLines(buf, p, end);
    if (q >= end || (end - q === 1 && buf[q] === 13)) { return eof ? false : undefined; }
    const out = Buffer.allocUnsafe(end - q);
    const parser = this.parser;
    if (parser.parse(buf, q, end, eof, out, false, row) < 0) { return undefined; }
    return parser.fields === 1 && out.subarray(0, parser.firstFieldEnd).includes(delimiter);
  }

  /** The summed columns of a header (or first row) of fields, bounded by maxColumns. */
  private layout(text: Buffer, bounds: number[], delimiter: number, row: number): Layout {
    const { step, offset, header, maxColumns } = this.options;
    const fieldCount = bounds.length / 2;
    // An empty first header cell marks an index column (pandas writes one), which is not a data column.
    const dataStart = header && fieldCount > 1 && bounds[1] === bounds[0] ? 1 : 0;
    const first = dataStart + offset;
    const columns = first < fieldCount ? Math.ceil((fieldCount - first) / step) : 0;
    if (columns > maxColumns) {
      throw new CsvError(
        'TOO_MANY_COLUMNS',
        row,
        undefined,
        `the ${header ? 'header' : 'first row'} has ${fieldCount} fields, so step ${step} from offset ${offset} would sum ${columns} columns; a job sums at most ${maxColumns} (MAX_COLUMNS)`,
      );
    }
    const indices: number[] = [];
    const names: string[] = [];
    for (let i = first; i < fieldCount; i += step) {
      indices.push(i);
      const name = header ? text.toString('utf8', bounds[2 * i], bounds[2 * i + 1]).trim() : '';
      names.push(name === '' ? `col${i}` : name);
    }
    return { delimiter, fieldCount, indices, names };
  }

  private tooLarge(row: number): CsvError {
    const what = this.options.header ? 'header' : 'first row';
    return new CsvError('HEADER_TOO_LARGE', row, undefined, `the ${what} is longer than ${sizeText(this.options.maxHeaderBytes)}, the most a header may take (MAX_HEADER_BYTES)`);
  }

  emptyFile(): CsvError {
    return new CsvError('EMPTY_FILE', undefined, undefined, this.options.header ? 'the file is empty: it has no header row' : 'the file is empty: it has no rows');
  }
}

/**
 * Every field of the header must be UTF-8 text without NUL. One check over all of them (the fields
 * lie end to end in text): each is valid exactly when the whole is and no non-empty field starts
 * with a continuation byte (a sequence cut between fields would). Then the field to blame.
 */
function checkText(text: Buffer, bounds: number[], row: number, header: boolean): void {
  const all = text.subarray(bounds[0] ?? 0, bounds[bounds.length - 1] ?? 0);
  let valid = !all.includes(0) && isUtf8(all);
  for (let i = 0; valid && i < bounds.length; i += 2) {
    if (bounds[i + 1] > bounds[i] && (text[bounds[i]] & 0xc0) === 0x80) { valid = false; }
  }
  if (valid) { return; }
  for (let i = 0; i < bounds.length; i += 2) {
    const field = text.subarray(bounds[i], bounds[i + 1]);
    if (field.includes(0) || !isUtf8(field)) {
      throw new CsvError('NOT_TEXT', row, undefined, `field ${i / 2 + 1} of the ${header ? 'header' : 'first row'} is not UTF-8 text; is this a CSV file?`);
    }
  }
}
