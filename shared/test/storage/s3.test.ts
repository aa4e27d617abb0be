import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { createS3Client, IdleTimeoutError, S3Storage, type ObjectReader, type ReadPolicy, type RetryInfo } from '../../src/storage';
import { FaultProxy } from '../../../test/support/fault-proxy';
import { digest, makeCsv, sha256 } from '../../../test/support/data';
import { startS3, uniqueBucket, type TestS3 } from '../../../test/support/s3';
import { failure } from '../../../test/support/failure';
import { waitFor } from '../../../test/support/wait';

const MB = 1024 * 1024;
const policy: ReadPolicy = { retries: 4, idleTimeoutMs: 2_000, backoffMs: 10, maxBackoffMs: 100 };

let s3: TestS3;
let proxy: FaultProxy;
let direct: S3Client;
let clients: S3Client[];

/**
 * Storage whose every request goes through the fault proxy, wired as production wires it. One
 * connection per read unless `parts` says otherwise.
 */
function storageVia(reads: ReadPolicy = policy, parts: { concurrency: number; partBytes: number } = { concurrency: 1, partBytes: 8 * MB }): S3Storage {
  const config = s3.config(proxy.url);
  const client = createS3Client(config, { connectionTimeoutMs: 2_000 });
  const readClient = createS3Client(config, { maxAttempts: 1, connectionTimeoutMs: 2_000, maxSockets: Infinity });
  clients.push(client, readClient);
  return new S3Storage({ client, readClient, reads, readConcurrency: parts.concurrency, readPartBytes: parts.partBytes });
}

/** Drains an iterator that is expected to fail. */
async function drain(it: AsyncIterator<Buffer>): Promise<void> {
  for (let r = await it.next(); !r.done; r = await it.next()) { /* read on */ }
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
  const handle = await storageVia().open({ kind: 's3', bucket, key: 'big.csv' }, { onRetry: (r) => retries.push(r) });
  expect(handle.info.size).toBe(data.length);

  const got = await digest(handle.chunks());

  expect(got.bytes).toBe(data.length);
  expect(got.sha256).toBe(sha256(data));
  expect(retries).toHaveLength(10);
  expect(proxy.stats.connections).toBe(11);
  // The two-byte probe that opened the object, then the read and its ten resumptions.
  expect(proxy.stats.requests).toHaveLength(12);
  // Every body byte crossed the proxy once: each resumed at the exact byte the last one stopped.
  expect(proxy.stats.bodyBytesToClient).toBe(data.length + 2);
});

test('an object replaced mid-read fails with FILE_CHANGED instead of mixing versions', async () => {
  const v1 = makeCsv(8 * MB);
  const v2 = Buffer.from(v1);
  v2.write('9', v2.length - 2, 'latin1'); // same size, different bytes: only the ETag tells
  const bucket = await bucketWith('changed', 'data.csv', v1);
  proxy.plan({ cutAfterBytes: 2 * MB });
  const handle = await storageVia().open({ kind: 's3', bucket, key: 'data.csv' });
  const it = handle.chunks()[Symbol.asyncIterator]();
  await it.next();
  await direct.send(new PutObjectCommand({ Bucket: bucket, Key: 'data.csv', Body: v2 }));

  const err = await failure(drain(it));

  expect(err.code).toBe('FILE_CHANGED');
  expect(err.permanent).toBe(true);
  expect(proxy.stats.requests).toHaveLength(3);
});

test('a stalled transfer is cut by the idle timeout and resumed where it stopped', async () => {
  const data = makeCsv(6 * MB);
  const bucket = await bucketWith('stall', 'data.csv', data);
  proxy.plan({ stallAfterBytes: 2 * MB + 12_345 });
  const retries: RetryInfo[] = [];
  const handle = await storageVia({ ...policy, idleTimeoutMs: 300 }).open(
    { kind: 's3', bucket, key: 'data.csv' },
    { onRetry: (r) => retries.push(r) },
  );

  const got = await digest(handle.chunks());

  expect(got).toEqual({ bytes: data.length, sha256: sha256(data) });
  expect(retries[0].error).toBeInstanceOf(IdleTimeoutError);
  expect(retries[0].offset).toBeGreaterThan(2 * MB - 1024);
  // On a loaded machine the resumed request may also miss the 300 ms for its headers: each retry is a new connection from the same byte.
  expect(retries.every((r) => r.offset === retries[0].offset)).toBe(true);
  expect(proxy.stats.connections).toBe(retries.length + 1);
});

test('a server that never answers is cut by the request timeout and retried', async () => {
  const data = makeCsv(MB);
  const bucket = await bucketWith('silent', 'data.csv', data);
  proxy.plan({ stallAfterBytes: 0 });
  const retries: RetryInfo[] = [];
  const handle = await storageVia({ ...policy, idleTimeoutMs: 300 }).open(
    { kind: 's3', bucket, key: 'data.csv' },
    { onRetry: (r) => retries.push(r) },
  );

  expect(await digest(handle.chunks())).toEqual({ bytes: data.length, sha256: sha256(data) });
  expect(retries.map((r) => r.offset)).toEqual([0]);
  expect(proxy.stats.connections).toBe(2);
});

test('a slow but moving link is not a stall', async () => {
  const data = makeCsv(MB / 2);
  const bucket = await bucketWith('slow', 'data.csv', data);
  proxy.setDefault({ throttleBytesPerSec: 2 * MB });
  const retries: RetryInfo[] = [];
  const handle = await storageVia({ ...policy, idleTimeoutMs: 400 }).open(
    { kind: 's3', bucket, key: 'data.csv' },
    { onRetry: (r) => retries.push(r) },
  );

  expect(await digest(handle.chunks())).toEqual({ bytes: data.length, sha256: sha256(data) });
  expect(retries).toHaveLength(0);
});

test('a missing key or bucket fails at once with its own code and one request', async () => {
  const bucket = await bucketWith('missing', 'present.csv', Buffer.from('a,b\n1,2\n'));
  const storage = storageVia();

  for (const [loc, code] of [
    [{ kind: 's3' as const, bucket, key: 'absent.csv' }, 'FILE_NOT_FOUND'],
    [{ kind: 's3' as const, bucket: uniqueBucket('nobucket'), key: 'x.csv' }, 'BUCKET_NOT_FOUND'],
  ] as const) {
    proxy.reset();
    const read = await failure(storage.open(loc));
    expect([read.code, read.status, read.permanent]).toEqual([code, 404, true]);
    expect(proxy.stats.requests).toHaveLength(1);

    proxy.reset();
    const stat = await failure(storage.stat(loc));
    expect(stat.code).toBe(code);
    expect(proxy.stats.requests).toHaveLength(1);
  }
});

test('a connection that keeps dropping gives STORAGE_UNAVAILABLE (transient) after the allowed retries', async () => {
  const bucket = await bucketWith('flaky', 'data.csv', makeCsv(MB));
  proxy.setDefault({ cutAfterBytes: 0 });
  const storage = storageVia({ ...policy, retries: 2 });

  const err = await failure(storage.open({ kind: 's3', bucket, key: 'data.csv' }));

  expect(err.code).toBe('STORAGE_UNAVAILABLE');
  expect(err.permanent).toBe(false);
  expect(proxy.stats.connections).toBe(3);
});

test('progress resets the attempt count: more resets than retries still finish', async () => {
  const data = makeCsv(4 * MB);
  const bucket = await bucketWith('progress', 'data.csv', data);
  proxy.plan(...Array.from({ length: 6 }, () => ({ cutAfterBytes: 512 * 1024, reset: true })));
  const handle = await storageVia({ ...policy, retries: 1 }).open({ kind: 's3', bucket, key: 'data.csv' });

  expect(await digest(handle.chunks())).toEqual({ bytes: data.length, sha256: sha256(data) });
  expect(proxy.stats.connections).toBe(7);
});

test('an abort stops the read with CANCELLED', async () => {
  const bucket = await bucketWith('abort', 'data.csv', makeCsv(4 * MB));
  proxy.plan({ stallAfterBytes: MB });
  const controller = new AbortController();
  const handle = await storageVia({ ...policy, idleTimeoutMs: 10_000 }).open(
    { kind: 's3', bucket, key: 'data.csv' },
    { signal: controller.signal },
  );
  setTimeout(() => controller.abort(), 100);

  const err = await failure(digest(handle.chunks()));

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
  const listed = (await storage.list({ kind: 's3', bucket, key: 'in/' }, { limit: 100 })).entries;
  expect(listed.map((e) => [e.path, e.size])).toEqual([['in/a.csv', data.length]]);

  const { body } = await storage.download({ kind: 's3', bucket, key: 'in/a.csv' });
  const parts: Buffer[] = [];
  for await (const c of body) { parts.push(c as Buffer); }
  expect(sha256(Buffer.concat(parts))).toBe(sha256(data));
});

describe('parallel ranged reads', () => {
  const parallel = { concurrency: 4, partBytes: 2 * MB };

  test('give every byte once, in order, from parts fetched on several connections', async () => {
    const data = makeCsv(21 * MB + 12_345);
    const bucket = await bucketWith('parts', 'data.csv', data);
    const object = await storageVia(policy, parallel).open({ kind: 's3', bucket, key: 'data.csv' });

    expect(await digest(object.chunks())).toEqual({ bytes: data.length, sha256: sha256(data) });
    // The probe, then eleven parts: ten of 2 MiB and the rest.
    const gets = proxy.stats.heads.filter((h) => h.startsWith('GET'));
    expect(gets).toHaveLength(12);
    expect(gets.slice(1).every((h) => new RegExp(`\\r\\nif-match: ${object.info.etag}\\r\\n`, 'i').test(h))).toBe(true);
    expect(proxy.stats.connections).toBeGreaterThanOrEqual(4);
    expect(proxy.stats.bodyBytesToClient).toBe(data.length + 2);
  });

  test('a range inside the object is read exactly, whichever parts it spans', async () => {
    const data = makeCsv(9 * MB);
    const bucket = await bucketWith('range', 'data.csv', data);
    const object = await storageVia(policy, parallel).open({ kind: 's3', bucket, key: 'data.csv' });
    const start = 2 * MB - 17;
    const end = 7 * MB + 5;

    expect(await digest(object.chunks({ start, end }))).toEqual({ bytes: end - start, sha256: sha256(data.subarray(start, end)) });
    const buf = Buffer.alloc(100);
    expect(await object.readAt(buf, data.length - 40)).toBe(40);
    expect(buf.subarray(0, 40)).toEqual(data.subarray(data.length - 40));
  });

  test('cuts on several parts at once: each part resumes at the byte it reached', async () => {
    const data = makeCsv(12 * MB);
    const bucket = await bucketWith('partcuts', 'data.csv', data);
    // Every connection drops after 1.5 MB: every 2 MiB part in flight is cut at least once, together.
    proxy.setDefault({ cutAfterBytes: 1.5 * MB + 1234 });
    const retries: RetryInfo[] = [];
    const object = await storageVia({ ...policy, retries: 3 }, parallel).open(
      { kind: 's3', bucket, key: 'data.csv' },
      { onRetry: (r) => retries.push(r) },
    );

    expect(await digest(object.chunks())).toEqual({ bytes: data.length, sha256: sha256(data) });
    const partsCut = new Set(retries.map((r) => Math.floor(r.offset / parallel.partBytes)));
    expect([...partsCut].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5]);
    // No byte was fetched twice: each resumed GET asked for the rest of its part only.
    expect(proxy.stats.bodyBytesToClient).toBe(data.length + 2);
    expect(retries.every((r) => r.offset % parallel.partBytes !== 0)).toBe(true);
  });

  test('an object replaced during a parallel read fails with FILE_CHANGED and hands out no byte of the new version', async () => {
    const v1 = makeCsv(6 * MB);
    // Same size, every digit different: only the ETag tells the versions apart.
    const v2 = Buffer.from(v1.map((b) => (b >= 48 && b <= 57 ? 48 + ((b - 47) % 10) : b)));
    const bucket = await bucketWith('replace', 'data.csv', v1);
    const object = await storageVia(policy, { concurrency: 3, partBytes: 512 * 1024 }).open({ kind: 's3', bucket, key: 'data.csv' });
    let offset = 0;
    let mixed = false;
    let replaced = false;

    const err = await failure(
      (async () => {
        for await (const chunk of object.chunks()) {
          mixed ||= !chunk.equals(v1.subarray(offset, offset + chunk.length));
          offset += chunk.length;
          if (replaced) { continue; }
          replaced = true;
          // s3rver rewrites an object in place (real S3 serves each GET from one version): let the
          // responses in flight finish before the new version lands, and hold back the next requests.
          proxy.hold();
          await waitFor(() => proxy.quiet || undefined, { what: 'responses in flight to finish', intervalMs: 5 });
          await direct.send(new PutObjectCommand({ Bucket: bucket, Key: 'data.csv', Body: v2 }));
          proxy.release();
        }
      })(),
    );

    expect([err.code, err.permanent]).toEqual(['FILE_CHANGED', true]);
    expect(err.message).toMatch(/ETag/);
    expect(mixed).toBe(false);
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThan(v1.length);
  });

  test('cancel stops every part within a second', async () => {
    const data = makeCsv(16 * MB);
    const bucket = await bucketWith('cancel', 'data.csv', data);
    proxy.setDefault({ throttleBytesPerSec: MB });
    const controller = new AbortController();
    const object = await storageVia({ ...policy, idleTimeoutMs: 10_000 }, parallel).open(
      { kind: 's3', bucket, key: 'data.csv' },
      { signal: controller.signal },
    );
    const it = object.chunks()[Symbol.asyncIterator]();
    await it.next();
    await waitFor(() => (proxy.stats.requests.length >= 1 + parallel.concurrency ? true : undefined), { what: 'all parts to start' });
    const requests = proxy.stats.requests.length;

    const cancelledAt = performance.now();
    controller.abort();
    expect((await failure(it.next())).code).toBe('CANCELLED');
    await waitFor(() => proxy.quiet || undefined, { what: 'every part to stop', intervalMs: 5, timeoutMs: 10_000 });
    const stoppedMs = performance.now() - cancelledAt;

    // The stop is event-driven (aborted requests, destroyed sockets), so a second leaves a wide margin.
    expect(stoppedMs).toBeLessThan(1000);
    expect(proxy.stats.requests).toHaveLength(requests);
    expect(proxy.stats.bodyBytesToClient).toBeLessThan(data.length / 2);
  });
});

describe('S3 errors: each has its own code, and none is retried', () => {
  const xmlError = (code: string, message: string, extra = '') =>
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>${extra}<RequestId>4442587FB7D0A2F9</RequestId></Error>`;

  async function openThrough(label: string, storage = storageVia()): Promise<{ err: unknown; requests: number }> {
    const bucket = await bucketWith(label, 'data.csv', Buffer.from('a,b\n1,2\n'));
    proxy.stats.requests = [];
    const err = await storage.open({ kind: 's3', bucket, key: 'data.csv' }).then(
      (o: ObjectReader) => o.close(),
      (e: unknown) => e,
    );
    return { err, requests: proxy.stats.requests.length };
  }

  function storageWith(credentials: { accessKeyId: string; secretAccessKey: string } | undefined): S3Storage {
    const readClient = createS3Client({ ...s3.config(proxy.url), credentials }, { maxAttempts: 1 });
    clients.push(readClient);
    return new S3Storage({ client: readClient, readClient, reads: policy });
  }

  test('a key S3 does not know: S3_CREDENTIALS_INVALID (403), one request', async () => {
    const { err, requests } = await openThrough('badkey', storageWith({ accessKeyId: 'NOPE', secretAccessKey: 'S3RVER' }));
    expect(err).toMatchObject({ code: 'S3_CREDENTIALS_INVALID', status: 403, permanent: true, message: expect.stringContaining('InvalidAccessKeyId') });
    expect(requests).toBe(1);
  });

  test('no credentials anywhere: S3_CREDENTIALS_MISSING before any request', async () => {
    const saved = { ...process.env };
    for (const k of Object.keys(process.env).filter((k) => k.startsWith('AWS_'))) { delete process.env[k]; }
    // Nowhere to look: no files, no instance metadata service.
    Object.assign(process.env, { AWS_SHARED_CREDENTIALS_FILE: '/nonexistent', AWS_CONFIG_FILE: '/nonexistent', AWS_EC2_METADATA_DISABLED: 'true' });
    try {
      const { err, requests } = await openThrough('nocreds', storageWith(undefined));
      expect(err).toMatchObject({ code: 'S3_CREDENTIALS_MISSING', status: 403, permanent: true });
      expect(requests).toBe(0);
    } finally {
      process.env = saved;
    }
  });

  // s3rver checks no V4 signature and has no policies or regions: these answers are AWS's, replayed by the proxy.
  test('a wrong secret (SignatureDoesNotMatch): S3_CREDENTIALS_INVALID (403), one request', async () => {
    const mismatch = xmlError('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
    proxy.plan({ respond: { status: 403, reason: 'Forbidden', headers: { 'Content-Type': 'application/xml' }, body: mismatch } });
    const { err, requests } = await openThrough('badsecret');
    expect(err).toMatchObject({ code: 'S3_CREDENTIALS_INVALID', status: 403, message: expect.stringContaining('SignatureDoesNotMatch') });
    expect(requests).toBe(1);
  });

  test('AccessDenied: FILE_ACCESS_DENIED (403), one request', async () => {
    proxy.plan({ respond: { status: 403, reason: 'Forbidden', headers: { 'Content-Type': 'application/xml' }, body: xmlError('AccessDenied', 'Access Denied') } });
    const { err, requests } = await openThrough('denied');
    expect(err).toMatchObject({ code: 'FILE_ACCESS_DENIED', status: 403, permanent: true });
    expect(requests).toBe(1);
  });

  test('a wrong region S3 will not redirect: S3_WRONG_REGION naming the bucket\'s region, one request', async () => {
    const malformed = xmlError(
      'AuthorizationHeaderMalformed',
      "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'",
      '<Region>eu-west-1</Region>',
    );
    proxy.plan({ respond: { status: 400, reason: 'Bad Request', headers: { 'Content-Type': 'application/xml' }, body: malformed } });
    const { err, requests } = await openThrough('region');
    expect(err).toMatchObject({ code: 'S3_WRONG_REGION', permanent: true, message: expect.stringContaining('eu-west-1') });
    expect(requests).toBe(1);
  });

  test('a region redirect is followed: the next request is signed for the bucket\'s region', async () => {
    const moved = xmlError('PermanentRedirect', 'The bucket you are attempting to access must be addressed using the specified endpoint.');
    proxy.plan({
      respond: { status: 301, reason: 'Moved Permanently', headers: { 'Content-Type': 'application/xml', 'x-amz-bucket-region': 'eu-west-1' }, body: moved },
    });
    const { err } = await openThrough('redirect');
    expect(err).toBeUndefined();
    expect(proxy.stats.heads).toHaveLength(2);
    expect(proxy.stats.heads[1]).toMatch(/Credential=[^/]+\/\d{8}\/eu-west-1\/s3\/aws4_request/i);
  });

  test('throttling (503 SlowDown) is retried after a throttling backoff; the read then succeeds', async () => {
    proxy.plan({ respond: { status: 503, reason: 'Slow Down', headers: { 'Content-Type': 'application/xml' }, body: xmlError('SlowDown', 'Please reduce your request rate.') } });
    const retries: RetryInfo[] = [];
    const bucket = await bucketWith('slowdown', 'data.csv', Buffer.from('a,b\n1,2\n'));
    const object = await storageVia().open({ kind: 's3', bucket, key: 'data.csv' }, { onRetry: (r) => retries.push(r) });
    expect(await digest(object.chunks())).toEqual({ bytes: 8, sha256: sha256(Buffer.from('a,b\n1,2\n')) });
    expect(retries).toHaveLength(1);
    // At least half of THROTTLE_BACKOFF_MS, whatever READ_BACKOFF_MS says (10 ms here).
    expect(retries[0].delayMs).toBeGreaterThanOrEqual(500);
  });
});
