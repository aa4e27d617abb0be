import type { Readable } from 'node:stream';
import type { Location } from '../location';

export interface ObjectInfo {
  size: number;
  modified: Date;
  /** S3 ETag (quoted, as S3 sends it); absent for local files. */
  etag?: string;
}

export interface ListEntry {
  /** Relative to the listed prefix's root: the local path under DATA_DIR, or the S3 key. */
  path: string;
  size: number;
  modified: Date;
}

export interface ReadProgress {
  bytesRead: number;
  bytesTotal: number;
}

export interface RetryInfo {
  attempt: number;
  offset: number;
  delayMs: number;
  error: unknown;
}

export interface ReadOptions {
  signal?: AbortSignal;
  /** Called before each resumed request. */
  onRetry?: (info: RetryInfo) => void;
}

/**
 * A file's bytes, each exactly once and in order, resumed at the byte reached after a transient fault.
 * A chunk is the consumer's only until it asks for the next one: the reader may reuse its memory.
 */
export interface ReadHandle {
  info: ObjectInfo;
  /** Iterate once. Breaking out of the loop releases the connection or file. */
  chunks: AsyncIterable<Buffer>;
  /** Releases the connection or file when chunks will not be (fully) iterated; safe to call twice. */
  close(): void;
}

export interface WriteOptions {
  contentLength?: number;
  signal?: AbortSignal;
  /** Refuse with FILE_EXISTS (412) rather than replace a file that exists when the write completes. */
  exclusive?: boolean;
}

export interface Storage {
  /** FILE_NOT_FOUND (permanent) when absent. */
  stat(loc: Location): Promise<ObjectInfo>;
  /** Opens a resumable read; fails with FILE_NOT_FOUND, FILE_ACCESS_DENIED, FILE_CHANGED or STORAGE_UNAVAILABLE. */
  read(loc: Location, options?: ReadOptions): Promise<ReadHandle>;
  /** A plain stream for downloads. */
  download(loc: Location, signal?: AbortSignal): Promise<{ info: ObjectInfo; body: Readable }>;
  /** Streams body to loc; the file is readable once this resolves. */
  write(loc: Location, body: Readable, options?: WriteOptions): Promise<ObjectInfo>;
  /** Files under a prefix (a folder for local paths), recursively. */
  list(loc: Location): Promise<ListEntry[]>;
}
