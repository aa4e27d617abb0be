import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { createS3Client, S3Storage, type ReadPolicy, type RetryInfo } from '../../src/storage';
import { FaultProxy } from '../../../test/support/fault-proxy';
import { digest, makeCsv, sha256 } from '../../../test/support/data';
import { startS3, uniqueBucket, type TestS3 } from '../../../test/support/s3';
import { failure } from '../../../test/support/failure';

const MB = 1024 * 1024;
const policy: ReadPolicy = { retries: 4, idleTimeoutMs: 2_000, backoffMs: 10, maxBackoffMs: 100 };

let s3: TestS3;
let proxy: FaultProxy;
let direct: S3Client;
let clients: S3Client[];

/** Storage whose every request goes through the fault proxy, wired as production wires it. */
function storageVia(reads: ReadPolicy = policy): S3Storage {
  const config = s3.config(proxy.url);
  const client = createS3Client(config, { connectionTimeoutMs: 2_000 });
  const readClient = createS3Client(config, { maxAttempts: 1, connectionTimeoutMs: 2_000 });
  clients.push(client, readClient);
  return new S3Storage({ client, readClient, reads });
}

async function bucketWith(label: string, key: string, body: Buffer): Promise<string> {
  const bucket = uniqueBucket(label);
  await direct.send(new CreateBucketCommand({ Bucket: bucket }));
  await direct.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  return bucket;
}

beforeAll(async () => {
  s3 = await startS3();
  proxy = await FaultProxy.start({ host: s3.host, port: s3.port });
  direct = createS3Client(s3.config());
  clients = [direct];
});

afterAll(async () => {
  for (const c of clients) { c.destroy(); }
  await proxy.close();
  await s3.close();
});

beforeEach(() => proxy.reset());

test('a 200 MB object read through 10 dropped connections arrives whole, every byte once', async () => {
  const data = makeCsv(200 * MB);
  const bucket = await bucketWith('cuts', 'big.csv', data);
  // Each of the first ten connections drops after a different, unaligned number of bytes.
  proxy.plan(...Array.from({ length: 10 }, (_, i) => ({ cutAfterBytes: 9 * MB + i * 777_777 })));
  const retries: RetryInfo[] = [];
  const handle = await storageVia().read({ kind: 's3', bucket, key: 'big.csv' }, { onRetry: (r) => retries.push(r) });
  expect(handle.info.size).toBe(data.length);

  const got = await digest(handle.chunks);

  expect(got.bytes).toBe(data.length);
  expect(got.sha256).toBe(sha256(data));
  expect(retries).toHaveLength(10);
  expect(proxy.stats.connections).toBe(11);
  expect(proxy.stats.requests).toHaveLength(11);
  // Every body byte crossed the proxy once: each resumed at the exact byte the last one stopped.
  expect(proxy.stats.bodyBytesToClient).toBe(data.length);
});

test('an object replaced mid-read fails with FILE_CHANGED instead of mixing versions', async () => {
  const v1 = makeCsv(8 * MB);
  const v2 = Buffer.from(v1);
  v2.write('9', v2.length - 2, 'latin1'); // same size, different bytes: only the ETag tells
  const bucket = await bucketWith('changed', 'data.csv', v1);
  proxy.plan({ cutAfterBytes: 2 * MB });
  const handle = await storageVia().read({ kind: 's3', bucket, key: 'data.csv' });
  const it = handle.chunks[Symbol.asyncIterator]();
  await it.next();
  await direct.send(new PutObjectCommand({ Bucket: bucket, Key: 'data.csv', Body: v2 }));

  const err = await failure(
    (async () => {
      for (let r = await it.next(); !r.done; r = await it.next()){; }
    })(),
  );

  expect(err.code).toBe('FILE_CHANGED');
  expect(err.permanent).toBe(true);
  expect(proxy.stats.requests).toHaveLength(2);
});

test('a stalled transfer is cut by the idle timeout and resumed where it stopped', async () => {
  const data = makeCsv(6 * MB);
  const bucket = await bucketWith('stall', 'data.csv', data);
  proxy.plan({ stallAfterBytes: 2 * MB + 12_345 });
  const retries: RetryInfo[] = [];
  const handle = await storageVia({ ...policy, idleTimeoutMs: 300 }).read(
    { kind: 's3', bucket, key: 'data.csv' },
    { onRetry: (r) => retries.push(r) },
  );

  const got = await digest(handle.chunks);

  expect(got).toEqual({ bytes: data.length, sha256: sha256(data) });
  expect(retries).toHaveLength(1);
  expect(retries[0].offset).toBeGreaterThan(2 * MB - 1024);
  expect(proxy.stats.connections).toBe(2);
});

test('a server that never answers is cut by the request timeout and retried', async () => {
  const data = makeCsv(MB);
  const bucket = await bucketWith('silent', 'data.csv', data);
  proxy.plan({ stallAfterBytes: 0 });
  const retries: RetryInfo[] = [];
  const handle = await storageVia({ ...policy, idleTimeoutMs: 300 }).read(
    { kind: 's3', bucket, key: 'data.csv' },
    { onRetry: (r) => retries.push(r) },
  );

  expect(await digest(handle.chunks)).toEqual({ bytes: data.length, sha256: sha256(data) });
  expect(retries.map((r) => r.offset)).toEqual([0]);
  expect(proxy.stats.connections).toBe(2);
});

test('a slow but moving link is not a stall', async () => {
  const data = makeCsv(MB / 2);
  const bucket = await bucketWith('slow', 'data.csv', data);
  proxy.setDefault({ throttleBytesPerSec: 2 * MB });
  const retries: RetryInfo[] = [];
  const handle = await storageVia({ ...policy, idleTimeoutMs: 400 }).read(
    { kind: 's3', bucket, key: 'data.csv' },
    { onRetry: (r) => retries.push(r) },
  );

  expect(await digest(handle.chunks)).toEqual({ bytes: data.length, sha256: sha256(data) });
  expect(retries).toHaveLength(0);
});

test('a missing key or bucket fails at once with one request', async () => {
  const bucket = await bucketWith('missing', 'present.csv', Buffer.from('a,b\n1,2\n'));
  const storage = storageVia();

  for (const loc of [
    { kind: 's3' as const, bucket, key: 'absent.csv' },
    { kind: 's3' as const, bucket: uniqueBucket('nobucket'), key: 'x.csv' },
  ]) {
    proxy.reset();
    const read = await failure(storage.read(loc));
    expect(read.code).toBe('FILE_NOT_FOUND');
    expect(read.permanent).toBe(true);
    expect(proxy.stats.requests).toHaveLength(1);

    proxy.reset();
    const stat = await failure(storage.stat(loc));
    expect(stat.code).toBe('FILE_NOT_FOUND');
    expect(proxy.stats.requests).toHaveLength(1);
  }
});

test('a connection that keeps dropping gives STORAGE_UNAVAILABLE (transient) after the allowed retries', async () => {
  const bucket = await bucketWith('flaky', 'data.csv', makeCsv(MB));
  proxy.setDefault({ cutAfterBytes: 0 });
  const storage = storageVia({ ...policy, retries: 2 });

  const err = await failure(storage.read({ kind: 's3', bucket, key: 'data.csv' }));

  expect(err.code).toBe('STORAGE_UNAVAILABLE');
  expect(err.permanent).toBe(false);
  expect(proxy.stats.connections).toBe(3);
});

test('progress resets the attempt count: more resets than retries still finish', async () => {
  const data = makeCsv(4 * MB);
  const bucket = await bucketWith('progress', 'data.csv', data);
  proxy.plan(...Array.from({ length: 6 }, () => ({ cutAfterBytes: 512 * 1024, reset: true })));
  const handle = await storageVia({ ...policy, retries: 1 }).read({ kind: 's3', bucket, key: 'data.csv' });

  expect(await digest(handle.chunks)).toEqual({ bytes: data.length, sha256: sha256(data) });
  expect(proxy.stats.connections).toBe(7);
});

test('an abort stops the read with CANCELLED', async () => {
  const bucket = await bucketWith('abort', 'data.csv', makeCsv(4 * MB));
  proxy.plan({ stallAfterBytes: MB });
  const controller = new AbortController();
  const handle = await storageVia({ ...policy, idleTimeoutMs: 10_000 }).read(
    { kind: 's3', bucket, key: 'data.csv' },
    { signal: controller.signal },
  );
  setTimeout(() => controller.abort(), 100);

  const err = await failure(digest(handle.chunks));

  expect(err.code).toBe('CANCELLED');
});

test('upload (multipart), stat, list and download round-trip', async () => {
  const storage = storageVia();
  const bucket = uniqueBucket('rt');
  await direct.send(new CreateBucketCommand({ Bucket: bucket }));
  const data = makeCsv(12 * MB);

  const info = await storage.write({ kind: 's3', bucket, key: 'in/a.csv' }, Readable.from([data.subarray(0, 5 * MB), data.subarray(5 * MB)]));
  expect(info.size).toBe(data.length);
  // 12 MB in 8 MiB parts: a multipart upload of two parts.
  expect(proxy.stats.requests.filter((r) => r.startsWith('PUT') && r.includes('partNumber='))).toHaveLength(2);

  expect((await storage.stat({ kind: 's3', bucket, key: 'in/a.csv' })).size).toBe(data.length);
  const listed = await storage.list({ kind: 's3', bucket, key: 'in/' });
  expect(listed.map((e) => [e.path, e.size])).toEqual([['in/a.csv', data.length]]);

  const { body } = await storage.download({ kind: 's3', bucket, key: 'in/a.csv' });
  const parts: Buffer[] = [];
  for await (const c of body) { parts.push(c as Buffer); }
  expect(sha256(Buffer.concat(parts))).toBe(sha256(data));
});
