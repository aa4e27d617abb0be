import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError } from '../errors';
import type { Location } from '../location';
import {
  accessDenied,
  cancelled,
  fileChanged,
  fileExists,
  fileNotFound,
  IdleTimeoutError,
  pauseBeforeRetry,
  type ReadPolicy,
  storageUnavailable,
  withIdleTimeout,
} from './backoff';
import type { ListEntry, ObjectInfo, ReadHandle, ReadOptions, Storage, WriteOptions } from './types';

/** The slice of fs.promises the read path uses; tests pass a faulty one. */
export interface LocalFs {
  open(file: string, flags: string): Promise<FileHandle>;
  realpath(file: string): Promise<string>;
}

export interface LocalStorageOptions {
  /** Absolute; nothing outside it (after resolving symlinks) is readable or writable. */
  dataDir: string;
  reads: ReadPolicy;
  /** Bytes per read; 1 MiB when absent. */
  chunkSize?: number;
  fs?: LocalFs;
}

const CHUNK = 1 << 20;
/** Errors a retry from the same offset can cure (flaky disks, NFS, a full file table). */
const TRANSIENT = new Set(['EIO', 'EAGAIN', 'EBUSY', 'EINTR', 'ETIMEDOUT', 'ESTALE', 'ECONNRESET', 'EMFILE', 'ENFILE', 'ENOMEM', 'EWOULDBLOCK']);
/** Upload temp files start with this; listings hide them. */
const TEMP_MARK = '.decisum-upload-';

function errno(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

export class LocalStorage implements Storage {
  private readonly dataDir: string;
  private readonly policy: ReadPolicy;
  private readonly chunkSize: number;
  private readonly fs: LocalFs;
  private root?: Promise<string>;

  constructor(options: LocalStorageOptions) {
    this.dataDir = path.resolve(options.dataDir);
    this.policy = options.reads;
    this.chunkSize = options.chunkSize ?? CHUNK;
    this.fs = options.fs ?? fs.promises;
  }

  async stat(loc: Location): Promise<ObjectInfo> {
    const rel = localPath(loc);
    const real = await this.resolveExisting(rel);
    const st = await fs.promises.stat(real).catch((err: unknown) => {
      throw this.mapError(err, rel);
    });
    if (st.isDirectory()) { throw isDirectory(rel); }
    return { size: st.size, modified: st.mtime };
  }

  async read(loc: Location, options: ReadOptions = {}): Promise<ReadHandle> {
    const rel = localPath(loc);
    const real = await this.resolveExisting(rel);
    const { signal } = options;
    const policy = this.policy;
    let attempt = 0;
    let offset = 0;

    // Opens (or reopens after a fault) and checks the file is still the one we started on.
    const open = async (expected?: fs.Stats): Promise<{ handle: FileHandle; st: fs.Stats }> => {
      for (;;) {
        if (signal?.aborted) { throw cancelled(signal); }
        let handle: FileHandle | undefined;
        try {
          handle = await this.fs.open(real, 'r');
          const st = await handle.stat();
          if (st.isDirectory()) { throw isDirectory(rel); }
          if (expected && !sameVersion(expected, st)) {
            throw fileChanged(rel, `size or modification time differs: ${expected.size} → ${st.size} bytes`);
          }
          return { handle, st };
        } catch (err) {
          await handle?.close().catch(() => undefined);
          if (err instanceof AppError) { throw err; }
          if (!TRANSIENT.has(errno(err) ?? '')) { throw this.mapError(err, rel); }
          await pauseBeforeRetry(rel, ++attempt, offset, err, policy, options);
        }
      }
    };

    const first = await open();
    const info: ObjectInfo = { size: first.st.size, modified: first.st.mtime };
    let current: FileHandle | undefined = first.handle;
    const chunkSize = this.chunkSize;
    const mapError = this.mapError.bind(this);

    async function* chunks(): AsyncGenerator<Buffer> {
      // Two buffers in turn: the consumer owns the last chunk until it asks for the next one.
      let buffers = [Buffer.allocUnsafe(chunkSize), Buffer.allocUnsafe(chunkSize)];
      let turn = 0;
      try {
        for (;;) {
          if (signal?.aborted) { throw cancelled(signal); }
          if (!current) { current = (await open(first.st)).handle; }
          const buf = buffers[turn];
          let bytesRead: number;
          try {
            ({ bytesRead } = await withIdleTimeout(current.read(buf, 0, buf.length, offset), policy.idleTimeoutMs));
          } catch (err) {
            if (!(err instanceof IdleTimeoutError) && !TRANSIENT.has(errno(err) ?? '')) { throw mapError(err, rel); }
            const stale = current;
            current = undefined;
            if (err instanceof IdleTimeoutError) {
              // The stuck read may still land in buf later: never touch these buffers again.
              buffers = [Buffer.allocUnsafe(chunkSize), Buffer.allocUnsafe(chunkSize)];
            }
            void stale.close().catch(() => undefined);
            await pauseBeforeRetry(rel, ++attempt, offset, err, policy, options);
            continue;
          }
          if (bytesRead === 0) {
            // End of file: it must still be the version we announced, whole.
            const st = await current.stat().catch((err: unknown) => {
              throw mapError(err, rel);
            });
            if (offset !== info.size || !sameVersion(first.st, st)) {
              throw fileChanged(rel, `expected ${info.size} bytes, read ${offset}, now ${st.size}`);
            }
            return;
          }
          offset += bytesRead;
          attempt = 0;
          turn ^= 1;
          yield buf.subarray(0, bytesRead);
        }
      } finally {
        const handle = current;
        current = undefined;
        await handle?.close().catch(() => undefined);
      }
    }

    const iterator = chunks();
    return {
      info,
      chunks: { [Symbol.asyncIterator]: () => iterator },
      close: () => {
        // A generator that never started skips its finally, so close the handle here too.
        const handle = current;
        current = undefined;
        void iterator.return(undefined).catch(() => undefined);
        void handle?.close().catch(() => undefined);
      },
    };
  }

  async download(loc: Location, signal?: AbortSignal): Promise<{ info: ObjectInfo; body: Readable }> {
    const rel = localPath(loc);
    const real = await this.resolveExisting(rel);
    const handle = await fs.promises.open(real, 'r').catch((err: unknown) => {
      throw this.mapError(err, rel);
    });
    try {
      const st = await handle.stat();
      if (st.isDirectory()) { throw isDirectory(rel); }
      const body = handle.createReadStream({ signal, highWaterMark: CHUNK });
      return { info: { size: st.size, modified: st.mtime }, body };
    } catch (err) {
      await handle.close();
      throw err instanceof AppError ? err : this.mapError(err, rel);
    }
  }

  async write(loc: Location, body: Readable, options: WriteOptions = {}): Promise<ObjectInfo> {
    const rel = localPath(loc);
    if (rel === '' || rel.endsWith('/')) {
      throw new AppError('VALIDATION', `${rel || '/'} names a folder: give a file name`, { status: 400 });
    }
    const dir = await this.ensureDir(path.posix.dirname(rel));
    const target = path.join(dir, path.posix.basename(rel));
    const existing = await fs.promises.lstat(target).catch(() => undefined);
    if (existing?.isDirectory()) { throw isDirectory(rel); }
    // Written beside the target and renamed into place, so a half upload is never visible.
    const temp = path.join(dir, `${TEMP_MARK}${randomUUID()}`);
    try {
      // flush: fsync before close, so the renamed file is on disk when PUT answers.
      const out = fs.createWriteStream(temp, { flags: 'wx', mode: 0o644, flush: true });
      const closed = once(out, 'close');
      try {
        await pipeline(body, out, { signal: options.signal });
      } finally {
        await closed;
      }
      if (options.contentLength !== undefined) {
        const written = (await fs.promises.stat(temp)).size;
        if (written !== options.contentLength) {
          throw new AppError('VALIDATION', `upload ended after ${written} of ${options.contentLength} bytes`, { status: 400 });
        }
      }
      if (options.exclusive) {
        // link refuses a taken name (EEXIST): checking and placing the file are one step, so two uploads cannot both win.
        await fs.promises.link(temp, target).catch((err: unknown) => {
          throw errno(err) === 'EEXIST' ? fileExists(rel) : err;
        });
        await fs.promises.unlink(temp);
      } else {
        await fs.promises.rename(temp, target);
      }
    } catch (err) {
      await fs.promises.unlink(temp).catch(() => undefined);
      if (options.signal?.aborted) { throw cancelled(options.signal); }
      throw err instanceof AppError ? err : this.mapError(err, rel);
    }
    const st = await fs.promises.stat(target);
    return { size: st.size, modified: st.mtime };
  }

  async list(loc: Location): Promise<ListEntry[]> {
    const rel = localPath(loc).replace(/\/+$/, '');
    const root = await this.realRoot();
    const start = await this.resolveExisting(rel);
    const st = await fs.promises.stat(start);
    if (!st.isDirectory()) {
      throw new AppError('VALIDATION', `${rel} is a file, not a folder: drop the trailing /`, { status: 400 });
    }
    const entries: ListEntry[] = [];
    const walk = async (realDir: string, logical: string): Promise<void> => {
      const dirents = await fs.promises.readdir(realDir, { withFileTypes: true }).catch((err: unknown) => {
        throw this.mapError(err, logical || '/');
      });
      for (const d of dirents) {
        if (d.name.startsWith(TEMP_MARK)) { continue; }
        const logicalChild = logical ? `${logical}/${d.name}` : d.name;
        const child = path.join(realDir, d.name);
        if (d.isDirectory()) {
          await walk(child, logicalChild);
        } else if (d.isFile() || d.isSymbolicLink()) {
          // Symlinks are listed only when they land on a file inside DATA_DIR; linked folders are skipped (no loops).
          const real = d.isSymbolicLink() ? await fs.promises.realpath(child).catch(() => undefined) : child;
          if (real === undefined || !inside(root, real)) { continue; }
          const s = await fs.promises.stat(real).catch(() => undefined);
          if (s?.isFile()) { entries.push({ path: logicalChild, size: s.size, modified: s.mtime }); }
        }
      }
    };
    await walk(start, rel);
    return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /**
   * The real absolute path of an existing file under DATA_DIR, for readers that open it themselves
   * (worker threads). FILE_NOT_FOUND, PATH_OUTSIDE_DATA_DIR or a folder error otherwise.
   */
  async resolve(rel: string): Promise<string> {
    const real = await this.resolveExisting(rel);
    const st = await fs.promises.stat(real).catch((err: unknown) => {
      throw this.mapError(err, rel);
    });
    if (st.isDirectory()) { throw isDirectory(rel); }
    return real;
  }

  private realRoot(): Promise<string> {
    this.root ??= fs.promises.realpath(this.dataDir).catch((err: unknown) => {
      this.root = undefined;
      throw err;
    });
    return this.root;
  }

  /** The real path of an existing file or folder under DATA_DIR; symlinks that leave it are refused. */
  private async resolveExisting(rel: string): Promise<string> {
    let root: string;
    try {
      root = await this.realRoot();
    } catch (err) {
      throw this.mapError(err, rel || '/');
    }
    let real: string;
    try {
      real = await this.fs.realpath(path.join(root, rel));
    } catch (err) {
      throw this.mapError(err, rel || '/');
    }
    if (!inside(root, real)) { throw outsideDataDir(rel); }
    return real;
  }

  /** Creates rel's folders one by one, refusing any step (a symlink) that leaves DATA_DIR. */
  private async ensureDir(rel: string): Promise<string> {
    await fs.promises.mkdir(this.dataDir, { recursive: true });
    const root = await this.realRoot();
    let current = root;
    for (const part of rel.split('/').filter((p) => p !== '' && p !== '.')) {
      const next = path.join(current, part);
      try {
        current = await fs.promises.realpath(next);
      } catch (err) {
        if (errno(err) !== 'ENOENT') { throw this.mapError(err, rel); }
        await fs.promises.mkdir(next).catch((e: unknown) => {
          if (errno(e) !== 'EEXIST') { throw this.mapError(e, rel); }
        });
        current = await fs.promises.realpath(next);
      }
      if (!inside(root, current)) { throw outsideDataDir(rel); }
      const st = await fs.promises.stat(current);
      if (!st.isDirectory()) {
        throw new AppError('VALIDATION', `${rel}: ${part} is a file, not a folder`, { status: 400 });
      }
    }
    return current;
  }

  private mapError(err: unknown, rel: string): AppError {
    if (err instanceof AppError) { return err; }
    const where = rel || '/';
    switch (errno(err)) {
      case 'ENOENT':
      case 'ENOTDIR':
        return fileNotFound(where, err);
      case 'EACCES':
      case 'EPERM':
        return accessDenied(where, err);
      case 'EISDIR':
        return isDirectory(where);
      case 'ELOOP':
      case 'ENAMETOOLONG':
        return new AppError('VALIDATION', `${where}: ${(err as Error).message}`, { status: 400, permanent: true, cause: err });
      default:
        return storageUnavailable(where, 1, err);
    }
  }
}

function localPath(loc: Location): string {
  if (loc.kind !== 'local') { throw new AppError('INTERNAL', `LocalStorage cannot handle ${loc.kind} locations`); }
  return loc.path;
}

function inside(root: string, real: string): boolean {
  return real === root || real.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

function sameVersion(a: fs.Stats, b: fs.Stats): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino && a.dev === b.dev;
}

function outsideDataDir(rel: string): AppError {
  return new AppError('PATH_OUTSIDE_DATA_DIR', `${rel} leads outside DATA_DIR (through a symlink)`, { status: 400 });
}

function isDirectory(rel: string): AppError {
  return new AppError('VALIDATION', `${rel || '/'} is a folder, not a file: add a trailing / to list it`, {
    status: 400,
    permanent: true,
  });
}
