import { permanentError } from '@decisum/shared';
import { CsvError, type EngineConfig } from './core';

export interface EngineOptions {
  /** Sum every step-th data column… */
  step: number;
  /** …starting at this 0-based data column. */
  offset: number;
  /** Detected from the header line when absent. */
  delimiter?: ',' | ';' | '\t' | '|';
  /** Whether the first record is a header; true when absent. Without one, columns are named col{index}. */
  header?: boolean;
  /** A record longer than this fails with LINE_TOO_LONG, which bounds memory; 64 MiB by default. */
  maxRecordBytes?: number;
}

export const DEFAULT_MAX_RECORD_BYTES = 64 * 1024 * 1024;

/** Validated engine settings; shared with the parallel runner so both read options alike. */
export function engineConfig(options: EngineOptions): EngineConfig {
  const { step, offset } = options;
  if (!Number.isInteger(step) || step < 1) { throw new RangeError(`step must be a positive integer, got ${step}`); }
  if (!Number.isInteger(offset) || offset < 0) { throw new RangeError(`offset must be a non-negative integer, got ${offset}`); }
  let delimiter: number | undefined;
  if (options.delimiter !== undefined) {
    if (![',', ';', '\t', '|'].includes(options.delimiter)) { throw new RangeError(`unsupported delimiter ${JSON.stringify(options.delimiter) }`); }
    delimiter = options.delimiter.charCodeAt(0);
  }
  const maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  if (!(maxRecordBytes >= 1)) { throw new RangeError(`maxRecordBytes must be positive, got ${maxRecordBytes}`); }
  return { step, offset, delimiter, header: options.header ?? true, maxRecordBytes };
}

/** The engine's errors are the user's data at fault: permanent, with row and column. */
export function toAppError(err: unknown): unknown {
  if (err instanceof CsvError) { return permanentError(err.code, err.message, { row: err.row, column: err.column }); }
  return err;
}

