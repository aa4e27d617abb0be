import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { AppError } from '../errors';
import {
  accessDenied,
  errnoOf,
  fileChanged,
  fileNotFound,
  IdleTimeoutError,
  isTransientErrno,
  pauseBeforeRetry,
  pauseBeforeRetrySync,
  type ReadPolicy,
  storageUnavailable,
  throwIfCancelled,
  withIdleTimeout,
} from './backoff';
import type { ByteRange, LocalVersion, ObjectInfo, ObjectReader, ReadOptions } from './types';

/*
 * A local file read at one version: device, inode, size and modification time, taken when it is
 * opened and compared whenever it is opened again (after a fault, or by a worker thread) and when
 * a read reaches the end. Imports nothing heavy, so worker threads load it on their own.
 */

/** The slice of fs.promises the read path uses; tests pass a faulty one. */
export interface LocalFs {
  open(file: string, flags: string): Promise<FileHandle>;
  realpath(file: string): Promise<string>;
}

export interface LocalFileOptions extends ReadOptions {
  /** Bytes per read of chunks(); 1 MiB when absent. */
  chunkSize?: number;
  fs?: Pick<LocalFs, 'open'>;
}

// What a worker thread needs beside the reader, without loading the rest of @decisum/shared.
export { AppError } from '../errors';
export type { ReadPolicy } from './backoff';
export type { LocalVersion } from './types';

const CHUNK = 1 << 20;

/** An ObjectReader over a local file; `LocalStorage.open` makes one for a path under DATA_DIR. */
export class LocalFile implements ObjectReader {
  readonly info: ObjectInfo;
  private handle: FileHandle | undefined;
  private closed = false;

  private constructor(
    readonly version: LocalVersion,
    readonly policy: ReadPolicy,
    handle: FileHandle,
    private readonly options: LocalFileOptions,
  ) {
    this.handle = handle;
    this.info = { size: version.size, modified: new Date(version.mtimeMs) };
  }

  /** Opens the file at `path` (absolute), named `name` in messages, retrying transient errors. */
  static async open(file: { path: string; name: string }, policy: ReadPolicy, options: LocalFileOptions = {}): Promise<LocalFile> {
    const opener = options.fs ?? fs.promises;
    for (let attempt = 1; ; attempt++) {
      throwIfCancelled(options.signal);
      let handle: FileHandle | undefined;
      try {
        handle = await opener.open(file.path, 'r');
        const st = await handle.stat();
        if (st.isDirectory()) { throw isDirectory(file.name); }
        const version: LocalVersion = { kind: 'local', ...file, dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
        return new LocalFile(version, policy, handle, options);
      } catch (err) {
        await handle?.close().catch(() => undefined);
        if (err instanceof AppError || !isTransientErrno(err)) { throw mapLocalError(err, file.name); }
        await pauseBeforeRetry(file.name, attempt, 0, err, policy, options);
      }
    }
  }

  async readAt(buf: Buffer, position: number): Promise<number> {
    // Read into a buffer of our own: after an idle timeout the stuck read may still land in it.
    const length = Math.max(0, Math.min(buf.length, this.version.size - position));
    if (length === 0) { return 0; }
    const got = await this.read(Buffer.allocUnsafe(length), position, length);
    got.buf.copy(buf, 0, 0, got.n);
    return got.n;
  }

  async *chunks(range: ByteRange = {}): AsyncGenerator<Buffer> {
    const size = this.version.size;
    const end = Math.min(range.end ?? size, size);
    let pos = range.start ?? 0;
    // No larger than the range: a small file costs one buffer of its size.
    const chunkSize = Math.max(1, Math.min(this.options.chunkSize ?? CHUNK, end - pos));
    // Two buffers in turn (the second made when a second read is needed): the next read runs on
    // the thread pool while the consumer works on the last.
    const slots: (Buffer | undefined)[] = [undefined, undefined];
    let turn = 0;
    const readNext = () => {
      const p = this.read((slots[turn] ??= Buffer.allocUnsafe(chunkSize)), pos, Math.min(chunkSize, end - pos));
      // A consumer that stops early never awaits the last read: its failure is nobody's.
      p.catch(() => undefined);
      return p;
    };
    let pending = pos < end ? readNext() : undefined;
    while (pending) {
      throwIfCancelled(this.options.signal);
      const { buf, n } = await pending;
      pending = undefined;
      slots[turn] = buf;
      if (n === 0) { throw fileChanged(this.version.name, `it ended at byte ${pos} of ${size}`); }
      pos += n;
      turn ^= 1;
      if (pos < end) { pending = readNext(); }
      yield n === buf.length ? buf : buf.subarray(0, n);
    }
    if (end === size) { await this.verify(); }
  }

  /** Both the open file and the file now under its name must be the version opened. */
  async verify(): Promise<void> {
    const { name, path } = this.version;
    const handle = await this.current();
    const [open, named] = await Promise.all([handle.stat(), fs.promises.stat(path)]).catch((err: unknown) => {
      throw errnoOf(err) === 'ENOENT' ? fileChanged(name, 'it was removed') : mapLocalError(err, name);
    });
    assertSameVersion(this.version, open);
    assertSameVersion(this.version, named);
  }

  async close(): Promise<void> {
    this.closed = true;
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close().catch(() => undefined);
  }

  /** One positional read, retried from the same position; returns the buffer it landed in. */
  private async read(buf: Buffer, position: number, length: number): Promise<{ buf: Buffer; n: number }> {
    const { name } = this.version;
    for (let attempt = 1; ; attempt++) {
      throwIfCancelled(this.options.signal);
      if (this.closed) { throw new AppError('INTERNAL', `${name}: read after close`); }
      let handle: FileHandle | undefined;
      try {
        handle = await this.current();
        const { bytesRead } = await withIdleTimeout(handle.read(buf, 0, length, position), this.policy.idleTimeoutMs);
        return { buf, n: bytesRead };
      } catch (err) {
        if (err instanceof AppError) { throw err; }
        if (!(err instanceof IdleTimeoutError) && !isTransientErrno(err)) { throw mapLocalError(err, name); }
        if (err instanceof IdleTimeoutError) { buf = Buffer.allocUnsafe(buf.length); }
        if (handle !== undefined && this.handle === handle) {
          this.handle = undefined;
          void handle.close().catch(() => undefined);
        }
        await pauseBeforeRetry(name, attempt, position, err, this.policy, this.options);
      }
    }
  }

  /** The open handle, or a new one after a fault, checked to be the same version. */
  private async current(): Promise<FileHandle> {
    if (this.handle) { return this.handle; }
    const handle = await (this.options.fs ?? fs.promises).open(this.version.path, 'r');
    try {
      assertSameVersion(this.version, await handle.stat());
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
    this.handle = handle;
    return handle;
  }
}

/**
 * The same file read synchronously by a worker thread, opened from the LocalVersion its parent
 * verified: it fails with FILE_CHANGED if the path now holds another file, and retries transient
 * errors under the same policy, blocking the worker while it waits.
 */
export class LocalFileSync {
  private fd: number | undefined;

  constructor(
    readonly version: LocalVersion,
    readonly policy: ReadPolicy,
    private readonly onRetry?: ReadOptions['onRetry'],
  ) {
    this.retrying(0, () => this.current());
  }

  /** Fills buf from position as far as one read goes; 0 only at the end. */
  read(buf: Uint8Array, position: number): number {
    return this.retrying(position, () => fs.readSync(this.current(), buf, 0, buf.length, position));
  }

  verify(): void {
    assertSameVersion(this.version, fs.fstatSync(this.current()));
  }

  close(): void {
    if (this.fd !== undefined) { fs.closeSync(this.fd); }
    this.fd = undefined;
  }

  private retrying<T>(position: number, fn: () => T): T {
    for (let attempt = 1; ; attempt++) {
      try {
        return fn();
      } catch (err) {
        if (err instanceof AppError || !isTransientErrno(err)) { throw mapLocalError(err, this.version.name); }
        this.close();
        pauseBeforeRetrySync(this.version.name, attempt, position, err, this.policy, this.onRetry);
      }
    }
  }

  private current(): number {
    if (this.fd !== undefined) { return this.fd; }
    const fd = fs.openSync(this.version.path, 'r');
    try {
      assertSameVersion(this.version, fs.fstatSync(fd));
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    this.fd = fd;
    return fd;
  }
}

function assertSameVersion(v: LocalVersion, st: fs.Stats): void {
  if (st.dev === v.dev && st.ino === v.ino && st.size === v.size && st.mtimeMs === v.mtimeMs) { return; }
  const why =
    st.dev !== v.dev || st.ino !== v.ino
      ? 'another file now has its name'
      : st.size !== v.size
        ? `${v.size} → ${st.size} bytes`
        : 'its modification time moved';
  throw fileChanged(v.name, why);
}

export function isDirectory(rel: string): AppError {
  return new AppError('VALIDATION', `${rel || '/'} is a folder, not a file: add a trailing / to list it`, {
    status: 400,
    permanent: true,
  });
}

/** The AppError for a file system error on `where` (a path as the user gave it). */
export function mapLocalError(err: unknown, where: string): AppError {
  if (err instanceof AppError) { return err; }
  const name = where || '/';
  switch (errnoOf(err)) {
    case 'ENOENT':
    case 'ENOTDIR':
      return fileNotFound(name, err);
    case 'EACCES':
    case 'EPERM':
      return accessDenied(name, err);
    case 'EISDIR':
      return isDirectory(name);
    case 'ELOOP':
      return new AppError('VALIDATION', `${name}: too many levels of symbolic links`, { status: 400, permanent: true, cause: err });
    case 'ENAMETOOLONG':
      return new AppError('VALIDATION', `${name}: the name is too long`, { status: 400, permanent: true, cause: err });
    default:
      return storageUnavailable(name, 1, err);
  }
}
