import fs from 'node:fs';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createS3Client, type Job } from '@decisum/shared';
import { makeCsv } from '../support/data';
import { FaultProxy } from '../support/fault-proxy';
import { startS3, uniqueBucket, type TestS3 } from '../support/s3';
import { SAMPLE, SAMPLE_ROWS, SAMPLE_SUMS } from '../support/sample';

/**
 * Jobs that take seconds without burning CPU: objects in an S3 endpoint read through a proxy that
 * forwards at most `bytesPerSec`. Executors get `env` (the proxy); the API gets the endpoint itself.
 */
export interface SlowS3 {
  proxy: FaultProxy;
  /** S3 settings for executors: every read goes through the throttling proxy. */
  env: Record<string, string>;
  /** S3 settings straight to the endpoint, for the API's check at submission. */
  directEnv: Record<string, string>;
  /** Uploads a generated CSV of about `bytes` and returns its location and expected sums. */
  put(key: string, bytes: number): Promise<{ file: string; expected: Expected }>;
  close(): Promise<void>;
}

export async function startSlowS3(bytesPerSec: number): Promise<SlowS3> {
  const s3: TestS3 = await startS3();
  const proxy = await FaultProxy.start({ host: s3.host, port: s3.port });
  proxy.setDefault({ throttleBytesPerSec: bytesPerSec });
  const client: S3Client = createS3Client(s3.config());
  const bucket = uniqueBucket('rel');
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const envFor = (endpoint: string): Record<string, string> => {
    const c = s3.config(endpoint);
    return {
      S3_ENDPOINT: endpoint,
      S3_REGION: c.region ?? 'us-east-1',
      S3_FORCE_PATH_STYLE: 'true',
      S3_BUCKETS: bucket,
      // One connection at bytesPerSec: the jobs must take seconds for these tests to act on them.
      S3_READ_CONCURRENCY: '1',
      AWS_ACCESS_KEY_ID: c.credentials!.accessKeyId,
      AWS_SECRET_ACCESS_KEY: c.credentials!.secretAccessKey,
    };
  };
  return {
    proxy,
    env: envFor(proxy.url),
    directEnv: envFor(s3.endpoint),
    async put(key, bytes) {
      const body = makeCsv(bytes);
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      return { file: `s3://${bucket}/${key}`, expected: expectedForMakeCsv(body) };
    },
    async close() {
      client.destroy();
      await proxy.close();
      await s3.close();
    },
  };
}

/** Column sums a job must report, as exact decimals. */
export interface Expected {
  rows: number;
  columns: { name: string; sum: string }[];
}

/**
 * The sums of makeCsv's columns 0, 10, 20 (id, col10, col20), worked out from how it writes them
 * (row i has id i and `${c}.${(c * 37) % 100}` in col{c+1}), not by parsing the file.
 */
function expectedForMakeCsv(body: Buffer): Expected {
  const lineLength = body.subarray(0, 400).toString('latin1').split('\n')[1].length + 1;
  const n = (body.length - body.indexOf(10) - 1) / lineLength;
  // The cell text is `${c}.${(c * 37) % 100}`: c = 19 writes "19.3", 19.30.
  const cell = (c: number) => BigInt(`${c}${String((c * 37) % 100).padEnd(2, '0')}`);
  return {
    rows: n,
    columns: [
      { name: 'id', sum: fromCents((BigInt(n) * BigInt(n - 1) * 100n) / 2n) },
      // col10 holds c = 9, col20 c = 19 (col{c+1}).
      { name: 'col10', sum: fromCents(cell(9) * BigInt(n)) },
      { name: 'col20', sum: fromCents(cell(19) * BigInt(n)) },
    ],
  };
}

/** The reference sample's sums (DESIGN.md). */
export const SAMPLE_EXPECTED: Expected = {
  rows: SAMPLE_ROWS,
  columns: SAMPLE_SUMS.map(({ name, sum }) => ({ name, sum })),
};

export const sampleCsv = (): Buffer => fs.readFileSync(SAMPLE);

function fromCents(cents: bigint): string {
  const s = cents.toString().padStart(3, '0');
  return `${s.slice(0, -2)}.${s.slice(-2)}`;
}

/** A decimal string in a canonical form, so "107.0", "107" and "107.00" compare equal. */
export function canonical(decimal: string): string {
  const [int, frac = ''] = decimal.split('.');
  const f = frac.replace(/0+$/, '');
  return f ? `${BigInt(int).toString()}.${f}` : BigInt(int).toString();
}

/** The job succeeded with exactly the expected rows and sums. */
export function expectSums(job: Job, expected: Expected): void {
  // The error, if any, is in the failure message.
  expect({ status: job.status, error: job.error }).toEqual({ status: 'succeeded', error: undefined });
  expect(job.result?.rows).toBe(expected.rows);
  expect(job.result?.columns.map((c) => ({ name: c.name, sum: canonical(c.sum) }))).toEqual(
    expected.columns.map((c) => ({ name: c.name, sum: canonical(c.sum) })),
  );
}
