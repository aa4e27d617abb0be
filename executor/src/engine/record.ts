import { CsvError } from './errors';

/*
 * The exact RFC 4180 record parser: quoted fields may hold delimiters, `""` and line breaks; LF or
 * CRLF. It unescapes one record into an output buffer and notes where the summed fields lie in it.
 * Every row the fast paths do not take comes here, and so does every error about a record.
 */

/** What the last parse found (the parser's fields, read by its caller). */
export class RecordParser {
  /** Fields in the last record parsed. */
  fields = 0;
  /** Whether every field of it was empty (a blank line, or only delimiters). */
  allEmpty = true;
  /** End of its first field in the output buffer (which starts at 0). */
  firstFieldEnd = 0;
  /** Where summed column j lies in the output buffer: [cellStart[j], cellEnd[j]). */
  cellStart = new Int32Array(0);
  cellEnd = new Int32Array(0);
  /** When set, each field's [start, end) in the output buffer is appended here (the header's names). */
  bounds: number[] | null = null;
  private delimiter = 44;
  /** Summed column of each field index, or -1. */
  private columnOf = new Int32Array(0);

  /** Fix the delimiter and which fields are summed. */
  setLayout(delimiter: number, fieldCount: number, indices: ArrayLike<number>): void {
    this.delimiter = delimiter;
    this.columnOf = new Int32Array(fieldCount).fill(-1);
    for (let j = 0; j < indices.length; j++) { this.columnOf[indices[j]] = j; }
    this.cellStart = new Int32Array(indices.length);
    this.cellEnd = new Int32Array(indices.length);
  }

  /**
   * Parse one record at src[p, end) into out (unescaped). Returns the position after the record's
   * line feed, or -1 when the record may continue past end. `inner` parses the content of a
   * double-encoded row, where a line feed is data. `row` is the record's row number, for errors.
   */
  parse(src: Buffer, p: number, end: number, eof: boolean, out: Buffer, inner: boolean, row: number): number {
    const { delimiter, columnOf, cellStart, cellEnd, bounds } = this;
    cellStart.fill(0);
    cellEnd.fill(0);
    let o = 0;
    let field = 0;
    let allEmpty = true;
    let firstFieldEnd = 0;
    for (;;) {
      const fs = o;
      if (p < end && src[p] === 34) {
        p = this.quoted(src, p + 1, end, eof, out, o, row);
        if (p < 0) { return -1; }
        o = this.written;
      }
      // Unquoted text, or text after a closing quote (kept as is, leniently).
      const us = o;
      let more = false;
      for (;;) {
        if (p >= end) {
          if (!eof) { return -1; }
          break;
        }
        const c = src[p];
        if (c === delimiter) {
          p++;
          more = true;
          break;
        }
        if (c === 10 && !inner) {
          p++;
          break;
        }
        out[o++] = c;
        p++;
      }
      if (!more && !inner && o > us && out[o - 1] === 13) { o--; }
      if (o > fs) { allEmpty = false; }
      const j = field < columnOf.length ? columnOf[field] : -1;
      if (j >= 0) {
        cellStart[j] = fs;
        cellEnd[j] = o;
      }
      if (field === 0) { firstFieldEnd = o; }
      if (bounds) { bounds.push(fs, o); }
      field++;
      if (!more) { break; }
    }
    this.fields = field;
    this.allEmpty = allEmpty;
    this.firstFieldEnd = firstFieldEnd;
    return p;
  }

  /** Output bytes written by the last quoted(). */
  private written = 0;

  /** A quoted field's content from p (just past its opening quote) into out at o; the position after its closing quote, or -1. */
  private quoted(src: Buffer, p: number, end: number, eof: boolean, out: Buffer, o: number, row: number): number {
    for (;;) {
      if (p >= end) {
        if (!eof) { return -1; }
        throw new CsvError('UNTERMINATED_QUOTE', row, undefined, 'a quoted field opens in this row and is never closed');
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
    this.written = o;
    return p;
  }
}
