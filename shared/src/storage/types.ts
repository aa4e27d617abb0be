import type { Readable } from 'node:stream';
import type { Location } from '../location';
import type { ReadPolicy } from './backoff';

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

/** One page of a listing: at most `limit` entries after the path `after`, in path order. */
export interface ListPage {
  limit: number;
  /** The `path` of the last entry of the previous page. */
  after?: string;
}

export interface ListResult {
  entries: ListEntry[];
  /** The `after` of the next page; absent on the last one. */
  next?: string;
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
 * The version of a local file a read is pinned to. Plain data, so a worker thread can open the same
 * version by itself (see LocalFileSync); `path` is the real path and never shown to a user.
 */
export interface LocalVersion {
  kind: 'local';
  path: string;
  /** The name the user gave (relative to DATA_DIR), for messages. */
  name: string;
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
}

/** The version of an S3 object a read is pinned to: its ETag when first seen. */
export interface S3Version {
  kind: 's3';
  bucket: string;
  key: string;
  etag: string;
  size: number;
}

export type ObjectVersion = LocalVersion | S3Version;

/** Bytes [start, end) of an object; the whole object by default. */
export interface ByteRange {
  start?: number;
  end?: number;
}

/**
 * An object opened at one version: any byte range of it can be read, each read retries and resumes
 * under the storage's read policy, and a read that finds the object changed fails with FILE_CHANGED
 * instead of mixing versions. Cancelled by the signal given to Storage.open.
 */
export interface ObjectReader {
  readonly info: ObjectInfo;
  readonly version: ObjectVersion;
  readonly policy: ReadPolicy;
  /**
   * The range's bytes, each exactly once and in order. A chunk is the consumer's only until it asks
   * for the next one: the reader may reuse its memory. Reading to the object's end also checks that
   * the object is still the version opened.
   */
  chunks(range?: ByteRange): AsyncIterable<Buffer>;
  /** Fills buf from position; fewer bytes only at the object's end. For small reads (headers, probes). */
  readAt(buf: Buffer, position: number): Promise<number>;
  /** FILE_CHANGED unless the object is still the version opened. */
  verify(): Promise<void>;
  /** Releases the file or connections; stops reads in flight. Safe to call twice. */
  close(): Promise<void>;
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
  /**
   * Opens loc at its current version. Fails with FILE_NOT_FOUND, FILE_ACCESS_DENIED, BUCKET_NOT_FOUND,
   * the S3 credential and region codes, or STORAGE_UNAVAILABLE once the retries run out.
   */
  open(loc: Location, options?: ReadOptions): Promise<ObjectReader>;
  /** A plain stream for downloads. */
  download(loc: Location, signal?: AbortSignal): Promise<{ info: ObjectInfo; body: Readable }>;
  /** Streams body to loc; the file is readable once this resolves. */
  write(loc: Location, body: Readable, options?: WriteOptions): Promise<ObjectInfo>;
  /** Files under a prefix (a folder for local paths), recursively, one page at a time in path order. */
  list(loc: Location, page: ListPage): Promise<ListResult>;
}
