import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import request from 'supertest';
import { createS3Client } from '@decisum/shared';
import { FaultProxy } from './support/fault-proxy';
import { jobOf } from './support/http';
import { startS3, uniqueBucket, type TestS3 } from './support/s3';
import { startStack, type Stack } from './support/stack';

/*
 * The read limits of issue 10 end to end (API → queue → executor → Redis), local and S3: a header
 * that would sum more than MAX_COLUMNS columns, or is longer than MAX_HEADER_BYTES, fails its job
 * with its own code, the limit in the message, on the first attempt, and without the data being
 * read (S3: the requests stop at the header).
 */

const MAX_COLUMNS = 100;
const MAX_HEADER_BYTES = 64 * 1024;

/** 2 MiB of data rows of `fields` fields. */
function rows(fields: number): string {
  const row = `${Array(fields).fill('1').join(',')}\n`;
  return row.repeat(Math.ceil((2 << 20) / row.length));
}
const WIDE = `${Array(MAX_COLUMNS + 1).fill('c').join(',')}\n${rows(MAX_COLUMNS + 1)}`;
const LONG_HEADER = `a,${'h'.repeat(2 * MAX_HEADER_BYTES)},c\n${rows(3)}`;

let s3: TestS3;
let proxy: FaultProxy;
let direct: S3Client;
let bucket: string;
let stack: Stack;

beforeAll(async () => {
  s3 = await startS3();
  proxy = await FaultProxy.start({ host: s3.host, port: s3.port });
  direct = createS3Client(s3.config());
  bucket = uniqueBucket('limits');
  await direct.send(new CreateBucketCommand({ Bucket: bucket }));
  const c = s3.config(proxy.url);
  stack = await startStack({
    executors: 1,
    env: {
      MAX_COLUMNS: String(MAX_COLUMNS),
      MAX_HEADER_BYTES: String(MAX_HEADER_BYTES),
      S3_ENDPOINT: proxy.url,
      S3_BUCKETS: bucket,
      S3_REGION: c.region ?? 'us-east-1',
      AWS_ACCESS_KEY_ID: c.credentials!.accessKeyId,
      AWS_SECRET_ACCESS_KEY: c.credentials!.secretAccessKey,
      S3_PART_BYTES: String(256 * 1024),
      S3_READ_CONCURRENCY: '4',
    },
  });
});

afterAll(async () => {
  await stack?.stop();
  direct?.destroy();
  await proxy?.close();
  await s3?.close();
});

async function run(file: string, body: object = {}) {
  const res = await request(stack.url).post('/api/v1/jobs').send({ file, ...body }).expect(202);
  return stack.waitForJob(jobOf(res).id);
}

const tooMany = {
  status: 'failed',
  attempts: 1,
  error: {
    code: 'TOO_MANY_COLUMNS',
    row: 1,
    message: `row 1: the header has ${MAX_COLUMNS + 1} fields, so step 1 from offset 0 would sum ${MAX_COLUMNS + 1} columns; a job sums at most ${MAX_COLUMNS} (MAX_COLUMNS)`,
  },
};
const tooLarge = {
  status: 'failed',
  attempts: 1,
  error: { code: 'HEADER_TOO_LARGE', row: 1, message: 'row 1: the header is longer than 64 KiB, the most a header may take (MAX_HEADER_BYTES)' },
};

describe('a local file', () => {
  it('fails with TOO_MANY_COLUMNS when the header would sum more than MAX_COLUMNS, having read only the header', async () => {
    stack.writeFile('wide.csv', WIDE);
    const job = await run('wide.csv', { step: 1 });
    expect(job).toMatchObject(tooMany);
    expect(job.progress.rows).toBe(0);
    // Under the limit, the same file is summed.
    expect(await run('wide.csv', { step: 2 })).toMatchObject({ status: 'succeeded', result: { columns: expect.any(Array) } });
  });

  it('fails with HEADER_TOO_LARGE when the header is longer than MAX_HEADER_BYTES', async () => {
    stack.writeFile('long-header.csv', LONG_HEADER);
    const job = await run('long-header.csv', { step: 2 });
    expect(job).toMatchObject(tooLarge);
    expect(job.progress.rows).toBe(0);
  });
});

describe('an S3 object', () => {
  beforeEach(() => proxy.reset());

  it.each([
    ['wide.csv', WIDE, tooMany],
    ['long-header.csv', LONG_HEADER, tooLarge],
  ])('%s fails with its code after its first parts, never reading the whole object', async (key, body, expected) => {
    await direct.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    proxy.stats.requests = [];
    const job = await run(`s3://${bucket}/${key}`, { step: key === 'wide.csv' ? 1 : 2 });
    expect(job).toMatchObject(expected);
    // The submission's probe, the executor's probe, and the parts in flight when the header failed
    // (S3_READ_CONCURRENCY 4 of 256 KiB, and as many queued behind them): the rest is never read.
    expect(body.length).toBeGreaterThan(2 << 20);
    expect(proxy.stats.requests.length).toBeLessThanOrEqual(2 + 2 * 4);
    expect(proxy.stats.bodyBytesToClient).toBeLessThanOrEqual(2 * 4 * 256 * 1024);
    expect(proxy.stats.bodyBytesToClient).toBeLessThan(body.length);
  });
});
