import type { ColumnSums } from './sums';

/*
 * What the row paths (plain.ts, double-encoded.ts) share with the engine that runs them: its read
 * buffer, the layout, the sums and the row counts, and the exact parser for a row they do not take.
 */

/** Typed-array views of memory read words as little-endian; the word loops assume so (elsewhere every row takes the exact path). */
export const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Bytes past the end of the read buffer that word loops may load (never use). */
export const SLACK = 16;

export interface Scan {
  /** The read buffer. */
  readonly buf: Buffer;
  /** The same memory as 32-bit words and as bytes, SLACK bytes past the end included. */
  readonly words: Int32Array;
  readonly bytes: Uint8Array;
  readonly delimiter: number;
  /** Fields per record, and the field index of each summed column. */
  readonly fieldCount: number;
  readonly indices: Int32Array;
  readonly sums: ColumnSums;
  readonly maxRecordBytes: number;
  /** Position of the first NUL byte at or after the row being read (the end of the data when none). */
  readonly nulPos: number;
  /** Data records summed, and physical records consumed (the row number of the last one). */
  rows: number;
  records: number;
  /** One record from p through the exact parser, not at the end of the input: the position after it, or -1. */
  exactRecord(p: number, end: number): number;
}
