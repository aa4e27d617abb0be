import {
  DEFAULT_MAX_COLUMNS,
  DEFAULT_MAX_HEADER_BYTES,
  JobOptionsSchema,
  MAX_RECORD_BYTES,
  permanentError,
  type JobOptions,
} from '@decisum/shared';
import type { EngineConfig } from './engine';
import { CsvError } from './errors';

/** A job's options (validated by the shared schema) and the limits its read keeps to. */
export interface EngineOptions extends JobOptions {
  /** A record longer than this fails with LINE_TOO_LONG, which bounds memory; 64 MiB by default. */
  maxRecordBytes?: number;
  /** A header longer than this fails with HEADER_TOO_LARGE; MAX_HEADER_BYTES's default when absent. */
  maxHeaderBytes?: number;
  /** A header that would sum more columns than this fails with TOO_MANY_COLUMNS; MAX_COLUMNS's default when absent. */
  maxColumns?: number;
}

export const DEFAULT_MAX_RECORD_BYTES = MAX_RECORD_BYTES;

/** Engine settings from options the shared job schema validates (callers outside a job, such as benchmarks, included). */
export function engineConfig(options: EngineOptions): EngineConfig {
  const parsed = JobOptionsSchema.safeParse({ step: options.step, offset: options.offset, delimiter: options.delimiter, header: options.header });
  if (!parsed.success) {
    throw new RangeError(`invalid job options: ${parsed.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
  }
  const { step, offset, delimiter, header } = parsed.data;
  return {
    step,
    offset,
    delimiter: delimiter?.charCodeAt(0),
    header: header ?? true,
    maxRecordBytes: positive('maxRecordBytes', options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES),
    maxHeaderBytes: positive('maxHeaderBytes', options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES),
    maxColumns: positive('maxColumns', options.maxColumns ?? DEFAULT_MAX_COLUMNS),
  };
}

function positive(name: string, value: number): number {
  if (!(value >= 1)) { throw new RangeError(`${name} must be positive, got ${value}`); }
  return value;
}

/** The engine's errors are the user's data at fault: permanent, with row and column. */
export function toAppError(err: unknown): unknown {
  if (err instanceof CsvError) { return permanentError(err.code, err.message, { row: err.row, column: err.column }); }
  return err;
}
