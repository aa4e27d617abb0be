import { CreateBucketCommand, DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import request from 'supertest';
import { createS3Client } from '@decisum/shared';
import { createSummer } from '../executor/src/engine';
import { makeCsv } from './support/data';
import { FaultProxy } from './support/fault-proxy';
import { jobOf, problemOf } from './support/http';
import { startS3, uniqueBucket, type TestS3 } from './support/s3';
import { startStack, type Stack } from './support/stack';

/*
 * S3 jobs end to end, every S3 request through a proxy that counts them: the API refuses a job on
 * an object it cannot read before accepting it, an object gone by the time the job runs fails it at
 * once, and a readable one is summed from parallel ranged GETs.
 */

let s3: TestS3;
let proxy: FaultProxy;
let direct: S3Client;
let bucket: string;

function s3Env(extra: Record<string, string> = {}): Record<string, string> {
  const c = s3.config(proxy.url);
  return {
    S3_ENDPOINT: proxy.url,
    S3_REGION: c.region ?? 'us-east-1',
    AWS_ACCESS_KEY_ID: c.credentials!.accessKeyId,
    AWS_SECRET_ACCESS_KEY: c.credentials!.secretAccessKey,
    // Every bucket: one test names a bucket that does not exist.
    S3_BUCKETS: '*',
    S3_PART_BYTES: String(256 * 1024),
    S3_READ_CONCURRENCY: '4',
    READ_BACKOFF_MS: '10',
    ...extra,
  };
}

beforeAll(async () => {
  s3 = await startS3();
  proxy = await FaultProxy.start({ host: s3.host, port: s3.port });
  direct = createS3Client(s3.config());
  bucket = uniqueBucket('jobs');
  await direct.send(new CreateBucketCommand({ Bucket: bucket }));
});

afterAll(async () => {
  direct.destroy();
  await proxy.close();
  await s3.close();
});

describe('with working credentials', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ executors: 0, env: s3Env() });
  });
  afterAll(() => stack.stop());
  beforeEach(() => proxy.reset());

  test('a missing key or bucket is refused with 404 and its code before anything is accepted, after one request', async () => {
    for (const [file, code] of [
      [`s3://${bucket}/absent.csv`, 'FILE_NOT_FOUND'],
      [`s3://${uniqueBucket('gone')}/data.csv`, 'BUCKET_NOT_FOUND'],
    ]) {
      proxy.stats.requests = [];
      const res = await request(stack.url).post('/api/v1/jobs').send({ file });
      expect([res.status, problemOf(res).code]).toEqual([404, code]);
      expect(problemOf(res).detail).toContain(file);
      expect(proxy.stats.requests).toHaveLength(1);
    }
    expect(await stack.store.counts()).toMatchObject({ active: 0 });
    expect((await stack.store.list({ limit: 10 })).jobs).toEqual([]);
  });

  test('an object deleted after submission fails the job at once with FILE_NOT_FOUND, one request, one attempt', async () => {
    await direct.send(new PutObjectCommand({ Bucket: bucket, Key: 'brief.csv', Body: 'a,b\n1,2\n' }));
    const res = await request(stack.url).post('/api/v1/jobs').send({ file: `s3://${bucket}/brief.csv` });
    expect(res.status).toBe(202);
    await direct.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'brief.csv' }));
    proxy.stats.requests = [];

    const executor = await stack.addExecutor();
    const job = await stack.waitForJob(jobOf(res).id);
    await executor.stop(0);

    expect(job).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'FILE_NOT_FOUND' } });
    expect(proxy.stats.requests).toHaveLength(1);
  });

  test('a readable object is summed from parallel parts: exact sums, progress to the last byte', async () => {
    const data = makeCsv(3 * 1024 * 1024);
    await direct.send(new PutObjectCommand({ Bucket: bucket, Key: 'big.csv', Body: data }));
    const expected = createSummer({ step: 10, offset: 0 });
    expected.push(data);

    const res = await request(stack.url).post('/api/v1/jobs').send({ file: `s3://${bucket}/big.csv` });
    const executor = await stack.addExecutor();
    const job = await stack.waitForJob(jobOf(res).id);
    await executor.stop(0);

    expect(job).toMatchObject({ status: 'succeeded', result: expected.finish(), progress: { bytesRead: data.length, bytesTotal: data.length } });
    // The submission's probe, the executor's probe, then the whole object (header included, no read of its own) in 256 KiB parts.
    expect(proxy.stats.requests).toHaveLength(2 + Math.ceil(data.length / (256 * 1024)));
  });
});

test('credentials S3 refuses: 403 S3_CREDENTIALS_INVALID at submission, nothing accepted', async () => {
  const stack = await startStack({ executors: 0, env: s3Env({ AWS_ACCESS_KEY_ID: 'NOT-A-KEY' }) });
  try {
    proxy.reset();
    const res = await request(stack.url).post('/api/v1/jobs').send({ file: `s3://${bucket}/any.csv` });
    expect([res.status, problemOf(res).code]).toEqual([403, 'S3_CREDENTIALS_INVALID']);
    expect(proxy.stats.requests).toHaveLength(1);
    expect((await stack.store.list({ limit: 10 })).jobs).toEqual([]);
  } finally {
    await stack.stop();
  }
});
