/*
 * The engine's errors. Every one is the user's data at fault, carries the 1-based row (and the
 * column when one cell is to blame), and becomes a permanent job error (options.ts: toAppError).
 */

export type CsvErrorCode =
  | 'NON_NUMERIC'
  | 'NUMBER_OUT_OF_RANGE'
  | 'RAGGED_ROW'
  | 'UNTERMINATED_QUOTE'
  | 'NOT_TEXT'
  | 'LINE_TOO_LONG'
  | 'EMPTY_FILE'
  | 'HEADER_TOO_LARGE'
  | 'TOO_MANY_COLUMNS';

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

/** A byte count as the README writes limits: MiB to one decimal from 1 MiB, else KiB or bytes. */
export function sizeText(bytes: number): string {
  if (bytes >= 1 << 20) { return `${Math.round((bytes / 1048576) * 10) / 10} MiB`; }
  if (bytes >= 1024) { return `${Math.round((bytes / 1024) * 10) / 10} KiB`; }
  return `${bytes} bytes`;
}

/** The reason of LINE_TOO_LONG, for a record over the limit wherever it is found. */
export function lineTooLong(maxRecordBytes: number): string {
  return `the record is longer than ${sizeText(maxRecordBytes)}; is a quote left open?`;
}

/** A cell's text for a message: JSON-quoted, cut at 60 characters. */
export function cellText(b: Buffer, s: number, e: number): string {
  const max = 60;
  const text = b.toString('utf8', s, Math.min(e, s + max));
  return JSON.stringify(e - s > max ? `${text}…` : text);
}
