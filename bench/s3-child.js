'use strict';
/*
 * One S3 benchmark run in its own process, so its peak RSS is its own. Plain JS over the built
 * code (npm run bench builds first). Usage:
 *   node bench/s3-child.js read|sum ENDPOINT BUCKET KEY CONCURRENCY PART_BYTES
 *   node bench/s3-child.js local FILE
 * `read` drains the object through the storage's parallel reader; `sum` is the executor's own path
 * (sumLocation); `local` sums a file on disk on one thread, for the sums to compare with.
 * Prints one JSON line: { ms, cpuMs, bytes, rssMB, sums, retries }.
 */
const fs = require('node:fs');
const { DEFAULT_READ_POLICY, S3Storage, createS3Client } = require('@decisum/shared');
const { sumLocation } = require('../executor/dist/compute.js');
const { sumFile } = require('../executor/dist/engine/index.js');

const [mode, ...args] = process.argv.slice(2);
const options = { step: 10, offset: 0 };

function s3Storage(endpoint, concurrency, partBytes) {
  const client = createS3Client(
    { endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } },
    { maxAttempts: 1, maxSockets: Infinity },
  );
  const storage = new S3Storage({ client, readClient: client, reads: DEFAULT_READ_POLICY, readConcurrency: concurrency, readPartBytes: partBytes });
  return { storage, client };
}

async function run() {
  if (mode === 'local') {
    const result = await sumFile(args[0], { ...options, threads: 1 });
    return { bytes: fs.statSync(args[0]).size, sums: result.columns.map((c) => c.sum), retries: 0 };
  }
  const [endpoint, bucket, key, concurrency, partBytes] = args;
  const { storage, client } = s3Storage(endpoint, Number(concurrency), Number(partBytes));
  const loc = { kind: 's3', bucket, key };
  let retries = 0;
  const onRetry = () => retries++;
  try {
    if (mode === 'read') {
      const object = await storage.open(loc, { onRetry });
      let bytes = 0;
      for await (const chunk of object.chunks()) { bytes += chunk.length; }
      await object.close();
      return { bytes, sums: [], retries };
    }
    const controller = new AbortController();
    let bytes = 0;
    const result = await sumLocation(loc, options, {
      storage,
      threads: 1,
      signal: controller.signal,
      onProgress: (p) => (bytes = p.bytesRead),
      onRetry,
    });
    return { bytes, sums: result.columns.map((c) => c.sum), retries };
  } finally {
    client.destroy();
  }
}

const t0 = process.hrtime.bigint();
run().then(
  (out) => {
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const { user, system } = process.cpuUsage();
    process.stdout.write(`${JSON.stringify({ ms, cpuMs: (user + system) / 1000, rssMB: process.resourceUsage().maxRSS / 1024, ...out })}\n`);
  },
  (err) => {
    process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
