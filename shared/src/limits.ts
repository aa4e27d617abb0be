/*
 * The limits one job's read of its file keeps to, so an executor's memory stays bounded whatever
 * the file: the defaults of MAX_COLUMNS and MAX_HEADER_BYTES (config.ts), and the engine's, for
 * callers without a config (benchmarks, tests).
 */

/** A record (row) longer than this fails the job with LINE_TOO_LONG. */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

/** Summed columns per job (MAX_COLUMNS): more fails the job with TOO_MANY_COLUMNS. */
export const DEFAULT_MAX_COLUMNS = 100_000;

/** Bytes of the header record (MAX_HEADER_BYTES): more fails the job with HEADER_TOO_LARGE. */
export const DEFAULT_MAX_HEADER_BYTES = 1024 * 1024;

/** What bounds one job's read (config.ts: MAX_COLUMNS, MAX_HEADER_BYTES). */
export interface ReadLimits {
  maxColumns: number;
  maxHeaderBytes: number;
}
