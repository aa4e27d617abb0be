import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError } from '../errors';
import { isReserved, type Location } from '../location';
import { cancelled, errnoOf, fileExists, type ReadPolicy } from './backoff';
import { isDirectory, LocalFile, mapLocalError, type LocalFs } from './local-file';
import { pageOf } from './listing';
import type { ListEntry, ListPage, ListResult, ObjectInfo, ObjectReader, ReadOptions, Storage, WriteOptions } from './types';

export interface LocalStorageOptions {
  /** Absolute; nothing outside it (after resolving symlinks) is readable or writable. */
  dataDir: string;
  reads: ReadPolicy;
  /** Bytes per read; 1 MiB when absent. */
  chunkSize?: number;
  fs?: LocalFs;
}

/** Temp files (an upload being written, an archive document before its rename) start with this; listings hide them. */
export const TEMP_MARK = '.decisum-upload-';

export class LocalStorage implements Storage {
  private readonly dataDir: string;
  private readonly policy: ReadPolicy;
  private readonly chunkSize?: number;
  private readonly fs: LocalFs;
  private root?: Promise<string>;

  constructor(options: LocalStorageOptions) {
    this.dataDir = path.resolve(options.dataDir);
    this.policy = options.reads;
    this.chunkSize = options.chunkSize;
    this.fs = options.fs ?? fs.promises;
  }

  async stat(loc: Location): Promise<ObjectInfo> {
    const rel = localPath(loc);
    // The stat through the name follows the same links as the real path, so the two run at once; the
    // stat is the answer only once the real path is known to be under DATA_DIR.
    const [, st] = await Promise.all([this.resolveExisting(rel), this.realRoot().then((root) => fs.promises.stat(path.join(root, rel)))]).catch(
      (err: unknown) => {
        throw mapLocalError(err, rel);
      },
    );
    if (st.isDirectory()) { throw isDirectory(rel); }
    return { size: st.size, modified: st.mtime };
  }

  async open(loc: Location, options: ReadOptions = {}): Promise<ObjectReader> {
    const rel = localPath(loc);
    const real = await this.resolveExisting(rel);
    return LocalFile.open({ path: real, name: rel }, this.policy, { ...options, chunkSize: this.chunkSize, fs: this.fs });
  }

  async download(loc: Location, signal?: AbortSignal): Promise<{ info: ObjectInfo; body: Readable }> {
    const rel = localPath(loc);
    const real = await this.resolveExisting(rel);
    const handle = await fs.promises.open(real, 'r').catch((err: unknown) => {
      throw mapLocalError(err, rel);
    });
    try {
      const st = await handle.stat();
      if (st.isDirectory()) { throw isDirectory(rel); }
      const body = handle.createReadStream({ signal, highWaterMark: 1 << 20 });
      return { info: { size: st.size, modified: st.mtime }, body };
    } catch (err) {
      await handle.close();
      throw err instanceof AppError ? err : mapLocalError(err, rel);
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
          throw errnoOf(err) === 'EEXIST' ? fileExists(rel) : err;
        });
        await fs.promises.unlink(temp);
      } else {
        await fs.promises.rename(temp, target);
      }
    } catch (err) {
      await fs.promises.unlink(temp).catch(() => undefined);
      if (options.signal?.aborted) { throw cancelled(options.signal); }
      throw err instanceof AppError ? err : mapLocalError(err, rel);
    }
    const st = await fs.promises.stat(target);
    return { size: st.size, modified: st.mtime };
  }

  /**
   * One page of the files under a folder, in path order, after page.after. Folders are read one at a
   * time with opendir and walked in order (a folder sorts as `name/`, so the walk's order is the
   * paths' order), folders wholly before the cursor are skipped, and the walk stops once the page is
   * full: memory holds one folder's names per level, never the whole tree.
   */
  async list(loc: Location, page: ListPage): Promise<ListResult> {
    const rel = localPath(loc).replace(/\/+$/, '');
    const root = await this.realRoot();
    const start = await this.resolveExisting(rel);
    const st = await fs.promises.stat(start);
    if (!st.isDirectory()) {
      throw new AppError('VALIDATION', `${rel} is a file, not a folder: drop the trailing /`, { status: 400 });
    }
    const after = page.after;
    const entries: ListEntry[] = [];
    const full = () => entries.length > page.limit;
    const walk = async (realDir: string, logical: string): Promise<void> => {
      for (const d of await sortedDir(realDir, logical)) {
        if (full()) { return; }
        if (d.name.startsWith(TEMP_MARK)) { continue; }
        const logicalChild = logical ? `${logical}/${d.name}` : d.name;
        // decisum's own folder (the results archive) is not the user's to see.
        if (isReserved(logicalChild)) { continue; }
        const child = path.join(realDir, d.name);
        if (d.isDirectory()) {
          const folder = `${logicalChild}/`;
          // Every path inside sorts after folder; all of them are before the cursor unless it lies inside.
          if (after === undefined || after < folder || after.startsWith(folder)) { await walk(child, logicalChild); }
        } else if ((d.isFile() || d.isSymbolicLink()) && (after === undefined || logicalChild > after)) {
          // Symlinks are listed only when they land on a file inside DATA_DIR; linked folders are skipped (no loops).
          const real = d.isSymbolicLink() ? await fs.promises.realpath(child).catch(() => undefined) : child;
          if (real === undefined || !inside(root, real)) { continue; }
          const s = await fs.promises.stat(real).catch(() => undefined);
          if (s?.isFile()) { entries.push({ path: logicalChild, size: s.size, modified: s.mtime }); }
        }
      }
    };
    await walk(start, rel);
    return pageOf(entries, page.limit);
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
      throw mapLocalError(err, rel || '/');
    }
    let real: string;
    try {
      real = await this.fs.realpath(path.join(root, rel));
    } catch (err) {
      throw mapLocalError(err, rel || '/');
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
        if (errnoOf(err) !== 'ENOENT') { throw mapLocalError(err, rel); }
        await fs.promises.mkdir(next).catch((e: unknown) => {
          if (errnoOf(e) !== 'EEXIST') { throw mapLocalError(e, rel); }
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
}

/** A folder's entries by the order of their paths: a folder's name counts as `name/`. */
async function sortedDir(realDir: string, logical: string): Promise<fs.Dirent[]> {
  const dirents: fs.Dirent[] = [];
  try {
    const dir = await fs.promises.opendir(realDir);
    for await (const d of dir) { dirents.push(d); }
  } catch (err) {
    throw mapLocalError(err, logical || '/');
  }
  const key = (d: fs.Dirent) => (d.isDirectory() ? `${d.name}/` : d.name);
  return dirents.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

function localPath(loc: Location): string {
  if (loc.kind !== 'local') { throw new AppError('INTERNAL', `LocalStorage cannot handle ${loc.kind} locations`); }
  return loc.path;
}

function inside(root: string, real: string): boolean {
  return real === root || real.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

function outsideDataDir(rel: string): AppError {
  return new AppError('PATH_OUTSIDE_DATA_DIR', `${rel} leads outside DATA_DIR (through a symlink)`, { status: 400 });
}
