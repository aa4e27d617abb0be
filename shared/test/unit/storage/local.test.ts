import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { LocalFile, LocalFileSync, LocalStorage, type LocalFs, type ReadPolicy, type RetryInfo } from '../../../src/storage';
import { digest, makeCsv, sha256 } from '../../../../test/support/data';
import { failure } from '../../../../test/support/failure';

const policy: ReadPolicy = { retries: 3, idleTimeoutMs: 1_000, backoffMs: 5, maxBackoffMs: 20 };

let base: string;
let dataDir: string;
let outside: string;

beforeEach(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-local-'));
  dataDir = path.join(base, 'data');
  outside = path.join(base, 'outside');
  fs.mkdirSync(dataDir);
  fs.mkdirSync(outside);
});

afterEach(() => fs.rmSync(base, { recursive: true, force: true }));

function errnoError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected`), { code });
}

/** fs whose file handles fail or hang on the reads numbered in `faults` (1-based, across handles). */
function faultyFs(faults: Record<number, string>): LocalFs & { reads: number; opens: number } {
  const state = { reads: 0, opens: 0 };
  return Object.assign(state, {
    realpath: (p: string) => fs.promises.realpath(p),
    open: async (p: string, flags: string): Promise<FileHandle> => {
      state.opens += 1;
      const handle = await fs.promises.open(p, flags);
      return new Proxy(handle, {
        get(target, prop, receiver) {
          if (prop === 'read') {
            return (...args: Parameters<FileHandle['read']>) => {
              state.reads += 1;
              const fault = faults[state.reads];
              if (fault === 'hang') { return new Promise(() => undefined); }
              if (fault) { return Promise.reject(errnoError(fault)); }
              return (target.read as (...a: unknown[]) => unknown)(...args);
            };
          }
          const value: unknown = Reflect.get(target, prop, receiver);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    },
  });
}

test('reads a file whole, in 1 MiB chunks, and stats it', async () => {
  const data = makeCsv(3 * 1024 * 1024 + 200);
  fs.writeFileSync(path.join(dataDir, 'a.csv'), data);
  const storage = new LocalStorage({ dataDir, reads: policy });

  expect((await storage.stat({ kind: 'local', path: 'a.csv' })).size).toBe(data.length);
  const handle = await storage.open({ kind: 'local', path: 'a.csv' });
  const sizes: number[] = [];
  const got = await digest(
    (async function* () {
      for await (const c of handle.chunks()) {
        sizes.push(c.length);
        yield c;
      }
    })(),
  );

  expect(got).toEqual({ bytes: data.length, sha256: sha256(data) });
  expect(sizes).toEqual([1 << 20, 1 << 20, 1 << 20, data.length - 3 * (1 << 20)]);
});

test('transient read errors are retried from the offset reached, with no byte lost or repeated', async () => {
  const data = makeCsv(5 * 1024 * 1024);
  fs.writeFileSync(path.join(dataDir, 'a.csv'), data);
  const fake = faultyFs({ 2: 'EIO', 3: 'EAGAIN', 5: 'EBUSY' });
  const storage = new LocalStorage({ dataDir, reads: policy, fs: fake });
  const retries: RetryInfo[] = [];

  const handle = await storage.open({ kind: 'local', path: 'a.csv' }, { onRetry: (r) => retries.push(r) });
  const got = await digest(handle.chunks());

  expect(got).toEqual({ bytes: data.length, sha256: sha256(data) });
  expect(retries.map((r) => [r.attempt, r.offset, (r.error as NodeJS.ErrnoException).code])).toEqual([
    [1, 1 << 20, 'EIO'],
    [2, 1 << 20, 'EAGAIN'],
    [1, 2 << 20, 'EBUSY'],
  ]);
  expect(fake.opens).toBe(4);
});

test('a read that hangs is cut by the idle timeout and resumed', async () => {
  const data = makeCsv(3 * 1024 * 1024);
  fs.writeFileSync(path.join(dataDir, 'a.csv'), data);
  const storage = new LocalStorage({ dataDir, reads: { ...policy, idleTimeoutMs: 100 }, fs: faultyFs({ 2: 'hang' }) });
  const retries: RetryInfo[] = [];

  const handle = await storage.open({ kind: 'local', path: 'a.csv' }, { onRetry: (r) => retries.push(r) });

  expect(await digest(handle.chunks())).toEqual({ bytes: data.length, sha256: sha256(data) });
  expect(retries).toHaveLength(1);
  expect((retries[0].error as Error).name).toBe('IdleTimeoutError');
});

test('errors that keep coming exhaust the retries: STORAGE_UNAVAILABLE, transient', async () => {
  fs.writeFileSync(path.join(dataDir, 'a.csv'), 'a,b\n1,2\n');
  const storage = new LocalStorage({ dataDir, reads: policy, fs: faultyFs({ 1: 'EIO', 2: 'EIO', 3: 'EIO', 4: 'EIO', 5: 'EIO' }) });

  const handle = await storage.open({ kind: 'local', path: 'a.csv' });
  const err = await failure(digest(handle.chunks()));

  expect(err.code).toBe('STORAGE_UNAVAILABLE');
  expect(err.permanent).toBe(false);
});

test('missing files, folders and permission errors fail at once with their codes', async () => {
  fs.mkdirSync(path.join(dataDir, 'dir'));
  fs.writeFileSync(path.join(dataDir, 'secret.csv'), 'x\n');
  const storage = new LocalStorage({ dataDir, reads: policy });

  const missing = await failure(storage.open({ kind: 'local', path: 'nope.csv' }));
  expect([missing.code, missing.status, missing.permanent]).toEqual(['FILE_NOT_FOUND', 404, true]);
  expect((await failure(storage.stat({ kind: 'local', path: 'dir/nope.csv' }))).code).toBe('FILE_NOT_FOUND');

  const dir = await failure(storage.open({ kind: 'local', path: 'dir' }));
  expect([dir.code, dir.permanent]).toEqual(['VALIDATION', true]);
  expect(dir.message).toMatch(/folder/);

  // Tests may run as root, where chmod does not deny: inject EACCES at open instead.
  const denying: LocalFs = {
    realpath: (p) => fs.promises.realpath(p),
    open: () => Promise.reject(errnoError('EACCES')),
  };
  const denied = await failure(new LocalStorage({ dataDir, reads: policy, fs: denying }).open({ kind: 'local', path: 'secret.csv' }));
  expect([denied.code, denied.status, denied.permanent]).toEqual(['FILE_ACCESS_DENIED', 403, true]);
});

test('symlinks that leave DATA_DIR are refused for every operation; those inside work', async () => {
  fs.writeFileSync(path.join(outside, 'passwd.csv'), 'secret\n');
  fs.symlinkSync(path.join(outside, 'passwd.csv'), path.join(dataDir, 'escape.csv'));
  fs.symlinkSync(outside, path.join(dataDir, 'out'));
  fs.writeFileSync(path.join(dataDir, 'real.csv'), 'a\n1\n');
  fs.symlinkSync('real.csv', path.join(dataDir, 'alias.csv'));
  const storage = new LocalStorage({ dataDir, reads: policy });

  for (const p of ['escape.csv', 'out/passwd.csv']) {
    expect((await failure(storage.open({ kind: 'local', path: p }))).code).toBe('PATH_OUTSIDE_DATA_DIR');
    expect((await failure(storage.stat({ kind: 'local', path: p }))).code).toBe('PATH_OUTSIDE_DATA_DIR');
    expect((await failure(storage.download({ kind: 'local', path: p }))).code).toBe('PATH_OUTSIDE_DATA_DIR');
  }
  const write = await failure(storage.write({ kind: 'local', path: 'out/sub/new.csv' }, Readable.from([Buffer.from('x')])));
  expect(write.code).toBe('PATH_OUTSIDE_DATA_DIR');
  expect(fs.readdirSync(outside)).toEqual(['passwd.csv']);
  expect((await failure(storage.list({ kind: 'local', path: 'out/' }, { limit: 100 }))).code).toBe('PATH_OUTSIDE_DATA_DIR');

  expect(await digest((await storage.open({ kind: 'local', path: 'alias.csv' })).chunks())).toEqual({ bytes: 4, sha256: sha256(Buffer.from('a\n1\n')) });
  // Listings show files and in-tree links, never what lies outside.
  expect((await storage.list({ kind: 'local', path: '' }, { limit: 100 })).entries.map((e) => e.path)).toEqual(['alias.csv', 'real.csv']);
});

test('a file that changes while it is read fails with FILE_CHANGED', async () => {
  const file = path.join(dataDir, 'a.csv');
  fs.writeFileSync(file, makeCsv(3 * 1024 * 1024));
  const storage = new LocalStorage({ dataDir, reads: policy });
  const handle = await storage.open({ kind: 'local', path: 'a.csv' });
  const it = handle.chunks()[Symbol.asyncIterator]();
  await it.next();
  fs.appendFileSync(file, '1,2,3\n');

  const err = await failure(
    (async () => {
      for (let r = await it.next(); !r.done; r = await it.next()){; }
    })(),
  );

  expect([err.code, err.permanent]).toEqual(['FILE_CHANGED', true]);
});

test('writes go through a temp file: a failed upload leaves nothing, a finished one is whole', async () => {
  const storage = new LocalStorage({ dataDir, reads: policy });
  const broken = new Readable({
    read() {
      this.push(Buffer.alloc(1024, 'a'));
      this.destroy(new Error('client went away'));
    },
  });
  await expect(storage.write({ kind: 'local', path: 'up/a.csv' }, broken)).rejects.toThrow();
  expect(fs.readdirSync(path.join(dataDir, 'up'))).toEqual([]);

  const data = makeCsv(2 * 1024 * 1024);
  const info = await storage.write({ kind: 'local', path: 'up/a.csv' }, Readable.from([data]), { contentLength: data.length });
  expect(info.size).toBe(data.length);
  expect(sha256(fs.readFileSync(path.join(dataDir, 'up', 'a.csv')))).toBe(sha256(data));
  expect(fs.readdirSync(path.join(dataDir, 'up'))).toEqual(['a.csv']);

  const short = await failure(storage.write({ kind: 'local', path: 'up/a.csv' }, Readable.from([Buffer.from('x')]), { contentLength: 10 }));
  expect(short.code).toBe('VALIDATION');
  expect(sha256(fs.readFileSync(path.join(dataDir, 'up', 'a.csv')))).toBe(sha256(data));
});

test('an abort ends the read with CANCELLED and closing an unread file twice is harmless', async () => {
  fs.writeFileSync(path.join(dataDir, 'a.csv'), makeCsv(4 * 1024 * 1024));
  const storage = new LocalStorage({ dataDir, reads: policy });
  const controller = new AbortController();
  const handle = await storage.open({ kind: 'local', path: 'a.csv' }, { signal: controller.signal });
  const it = handle.chunks()[Symbol.asyncIterator]();
  await it.next();
  controller.abort();
  expect((await failure(it.next())).code).toBe('CANCELLED');

  const unread = await storage.open({ kind: 'local', path: 'a.csv' });
  await unread.close();
  await unread.close();
});

test('any byte range reads exactly its bytes, and readAt fills a buffer from a position', async () => {
  const data = makeCsv(3 * 1024 * 1024 + 77);
  fs.writeFileSync(path.join(dataDir, 'a.csv'), data);
  const file = await new LocalStorage({ dataDir, reads: policy, chunkSize: 100_000 }).open({ kind: 'local', path: 'a.csv' });

  for (const [start, end] of [[0, 10], [1_234_567, 2_345_678], [data.length - 5, data.length], [500, 500]]) {
    expect(await digest(file.chunks({ start, end }))).toEqual({ bytes: end - start, sha256: sha256(data.subarray(start, end)) });
  }
  const buf = Buffer.alloc(1000);
  expect(await file.readAt(buf, data.length - 300)).toBe(300);
  expect(buf.subarray(0, 300)).toEqual(data.subarray(data.length - 300));
  expect(await file.readAt(buf, data.length)).toBe(0);
  await file.close();
});

test('a reopen after a fault finds another file under the name: FILE_CHANGED, not its bytes', async () => {
  const file = path.join(dataDir, 'a.csv');
  fs.writeFileSync(file, makeCsv(3 * 1024 * 1024));
  const storage = new LocalStorage({ dataDir, reads: policy, fs: faultyFs({ 2: 'EIO' }) });
  const handle = await storage.open({ kind: 'local', path: 'a.csv' });
  const it = handle.chunks()[Symbol.asyncIterator]();
  await it.next();
  // Same size, new inode: the open handle still reads the old file; only a reopen would see this one.
  fs.writeFileSync(`${file}.new`, makeCsv(3 * 1024 * 1024));
  fs.renameSync(`${file}.new`, file);

  const err = await failure(
    (async () => {
      for (let r = await it.next(); !r.done; r = await it.next()) { /* drain */ }
    })(),
  );
  expect([err.code, err.message]).toEqual(['FILE_CHANGED', 'a.csv changed while it was being read (another file now has its name)']);
});

describe('LocalFileSync (a worker thread opening the version its parent verified)', () => {
  test('reads the same bytes by position and verifies the version at the end', async () => {
    const data = makeCsv(2 * 1024 * 1024);
    fs.writeFileSync(path.join(dataDir, 'a.csv'), data);
    const opened = await LocalFile.open({ path: path.join(dataDir, 'a.csv'), name: 'a.csv' }, policy);
    // The version crosses threads as plain data.
    const worker = new LocalFileSync(structuredClone(opened.version), opened.policy);
    const buf = Buffer.alloc(4096);
    expect(worker.read(buf, 1_000_000)).toBe(4096);
    expect(buf).toEqual(data.subarray(1_000_000, 1_004_096));
    expect(() => worker.verify()).not.toThrow();
    worker.close();
    await opened.close();
  });

  test('a file replaced or modified since the parent opened it fails with FILE_CHANGED', async () => {
    const file = path.join(dataDir, 'a.csv');
    fs.writeFileSync(file, 'a,b\n1,2\n');
    const opened = await LocalFile.open({ path: file, name: 'a.csv' }, policy);
    await opened.close();

    fs.writeFileSync(`${file}.new`, 'a,b\n3,4\n');
    fs.renameSync(`${file}.new`, file);
    expect(() => new LocalFileSync(opened.version, policy)).toThrow('a.csv changed while it was being read (another file now has its name)');

    const again = await LocalFile.open({ path: file, name: 'a.csv' }, policy);
    const worker = new LocalFileSync(again.version, policy);
    fs.appendFileSync(file, '5,6\n');
    expect(() => worker.verify()).toThrow('a.csv changed while it was being read (8 → 12 bytes)');
    worker.close();
    await again.close();
  });
});
