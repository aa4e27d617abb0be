import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createS3Client, generateCsv, S3Storage, type JobOptions, type JobResult, type RetryInfo } from '@decisum/shared';
import { sumLocation } from '../src/compute';
import { createSummer, sumFile } from '../src/engine';
import { FaultProxy } from '../../test/support/fault-proxy';
import { SAMPLE } from '../../test/support/sample';
import { startS3, uniqueBucket, type TestS3 } from '../../test/support/s3';

/*
 * S3 objects summed from parallel ranged GETs, each part 64 KiB, through a proxy that cuts a fifth
 * of the responses mid-body, must give exactly what the engine gives for the same bytes on disk.
 */

const PART = 64 * 1024;
const policy = { retries: 6, idleTimeoutMs: 5_000, backoffMs: 5, maxBackoffMs: 50 };

let s3: TestS3;
let proxy: FaultProxy;
let direct: S3Client;
let readClient: S3Client;
let storage: S3Storage;
let bucket: string;
let dir: string;

beforeAll(async () => {
  s3 = await startS3();
  proxy = await FaultProxy.start({ host: s3.host, port: s3.port }, { seed: 7 });
  direct = createS3Client(s3.config());
  readClient = createS3Client(s3.config(proxy.url), { maxAttempts: 1 });
  storage = new S3Storage({ client: readClient, readClient, reads: policy, readPartBytes: PART, readConcurrency: 4 });
  bucket = uniqueBucket('sums');
  await direct.send(new CreateBucketCommand({ Bucket: bucket }));
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-s3-sums-'));
});

afterAll(async () => {
  readClient.destroy();
  direct.destroy();
  await proxy.close();
  await s3.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  proxy.reset();
  proxy.setDefault({ cutShare: 0.2 });
});

/** Sums `data` from S3 in parallel parts, from disk on one thread, and in memory; all three must agree. */
async function sumBothWays(name: string, data: Buffer, options: JobOptions): Promise<{ s3: JobResult; retries: RetryInfo[] }> {
  await direct.send(new PutObjectCommand({ Bucket: bucket, Key: name, Body: data }));
  const file = path.join(dir, name);
  fs.writeFileSync(file, data);
  const retries: RetryInfo[] = [];
  const controller = new AbortController();
  const fromS3 = await sumLocation({ kind: 's3', bucket, key: name }, options, {
    storage,
    threads: 2,
    signal: controller.signal,
    onProgress: () => undefined,
    onRetry: (r) => retries.push(r),
  });
  const fromDisk = await sumFile(file, { ...options, threads: 1 });
  const inMemory = createSummer(options);
  inMemory.push(data);
  expect(fromS3).toEqual(fromDisk);
  expect(fromS3).toEqual(inMemory.finish());
  return { s3: fromS3, retries };
}

/** Records whose quoted second field holds many line breaks, so part boundaries fall inside quotes. */
function quotedLineBreaks(rows: number): Buffer {
  let text = 'id,note,amount\n';
  for (let i = 0; i < rows; i++) {
    const lines = Array.from({ length: 20 + (i % 37) }, (_, j) => `${i}.${j},""x"" y,${j}`).join('\n');
    text += `${i},"${lines}",${(i % 13) - 6}.${i % 100}\n`;
  }
  return Buffer.from(text);
}

test('quoted line breaks across part boundaries: the same exact sums', async () => {
  const data = quotedLineBreaks(2000);
  expect(data.length).toBeGreaterThan(12 * PART);
  const { s3, retries } = await sumBothWays('quoted.csv', data, { step: 2, offset: 0 });
  expect(s3.rows).toBe(2000);
  // The proxy did cut responses, and the parts resumed.
  expect(proxy.stats.cuts).toBeGreaterThan(0);
  expect(retries.length).toBe(proxy.stats.cuts);
});

test('double-encoded rows (the reference sample, and 6,000 more rows of its shape): the same exact sums', async () => {
  await sumBothWays('sample.csv', fs.readFileSync(SAMPLE), { step: 10, offset: 0 });
  const out = new PassThrough();
  const parts: Buffer[] = [];
  out.on('data', (c: Buffer) => parts.push(c));
  await generateCsv(out, { rows: 6000, cols: 30, kind: 'sample', seed: 3 });
  out.end();
  const { s3 } = await sumBothWays('sample-shape.csv', Buffer.concat(parts), { step: 10, offset: 0 });
  expect(s3.rows).toBe(6000);
});

test('CRLF line ends, a BOM and quoted CRLFs: the same exact sums', async () => {
  let text = '\ufeffname;value;"other ""col"""\r\n';
  for (let i = 0; i < 20_000; i++) {
    const name = i % 9 === 0 ? `"multi\r\nline ${i}; with ; delimiters"` : `n${i}`;
    text += `${name};${i % 1000}.${i % 7};${-i}e-2\r\n`;
  }
  const { s3 } = await sumBothWays('crlf.csv', Buffer.from(text), { step: 1, offset: 1 });
  expect(s3.columns.map((c) => c.name)).toEqual(['value', 'other "col"']);
  expect(s3.rows).toBe(20_000);
});
