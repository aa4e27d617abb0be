/**
 * Storage benchmark: the same ~500 MB CSV read (and summed) from S3 (s3rver, in its own process)
 * and from local disk. Run alone with `node -r ts-node/register bench/storage.ts`, or from bench/run.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createS3Client, LocalStorage, S3Storage, type Location, type Storage } from '../shared/src';
import { createSummer } from '../executor/src/engine';

const ROOT = path.resolve(__dirname, '..');
const DATA_DIR = path.join(ROOT, 'bench', 'data');
const FILE = 'storage-500mb.csv';
const TARGET_BYTES = 500 * 1024 * 1024;
const reads = { retries: 8, idleTimeoutMs: 30_000, backoffMs: 200 };

export interface StorageBenchRow {
  name: string;
  bytes: number;
  /** MB/s (10⁶ bytes) reading only, and reading while summing every 10th column. */
  localRead: number;
  s3Read: number;
  localSum: number;
  s3Sum: number;
  /** local ÷ S3: how much slower S3 (through s3rver on loopback) is. */
  readRatio: number;
  sumRatio: number;
}

/** Writes the file once, in 8 MB blocks: a header, then numbered rows of 41 numeric columns. */
function ensureFile(file: string): number {
  if (fs.existsSync(file) && fs.statSync(file).size >= TARGET_BYTES * 0.9) { return fs.statSync(file).size; }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const header = `id,${Array.from({ length: 40 }, (_, i) => `col${i}`).join(',')}\n`;
  const line = `0000000000,${Array.from({ length: 40 }, (_, i) => `${(i * 7) % 100}.${(i * 37) % 1000}`).join(',')}\n`;
  const perBlock = Math.floor((8 * 1024 * 1024) / line.length);
  const block = Buffer.alloc(perBlock * line.length);
  block.fill(line, 'latin1');
  const temp = `${file}.tmp`;
  const fd = fs.openSync(temp, 'w');
  fs.writeSync(fd, header);
  let written = header.length;
  for (let row = 0; written < TARGET_BYTES; ) {
    for (let i = 0; i < perBlock; i++, row++) { block.write(String(row).padStart(10, '0'), i * line.length, 'latin1'); }
    fs.writeSync(fd, block);
    written += block.length;
  }
  fs.closeSync(fd);
  fs.renameSync(temp, file);
  return written;
}

/** s3rver in a child process, so the server does not share the reader's event loop. */
async function startS3rver(directory: string): Promise<{ endpoint: string; child: ChildProcess }> {
  const script = `
    const S3rver = require('s3rver');
    new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: ${JSON.stringify(directory)} })
      .run().then((a) => console.log('PORT ' + a.port));`;
  const child = spawn(process.execPath, ['-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  for await (const l of lines) {
    const m = /^PORT (\d+)$/.exec(l);
    if (m) { return { endpoint: `http://127.0.0.1:${m[1] }`, child }; }
  }
  throw new Error('s3rver did not start');
}

async function timed(storage: Storage, loc: Location, sum: boolean): Promise<{ bytes: number; seconds: number }> {
  const started = process.hrtime.bigint();
  const handle = await storage.read(loc);
  const summer = sum ? createSummer({ step: 10, offset: 0 }) : undefined;
  let bytes = 0;
  for await (const chunk of handle.chunks) {
    bytes += chunk.length;
    summer?.push(chunk);
  }
  summer?.finish();
  return { bytes, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

export async function runStorageBench(log: (line: string) => void = console.log): Promise<StorageBenchRow> {
  const file = path.join(DATA_DIR, FILE);
  const bytes = ensureFile(file);
  const s3dir = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-bench-s3-'));
  const { endpoint, child } = await startS3rver(s3dir);
  const client = createS3Client(
    { endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } },
    { maxAttempts: 1 },
  );
  try {
    await client.send(new CreateBucketCommand({ Bucket: 'bench' }));
    await new Upload({ client, params: { Bucket: 'bench', Key: FILE, Body: fs.createReadStream(file) }, partSize: 16 * 1024 * 1024 }).done();
    const local = new LocalStorage({ dataDir: DATA_DIR, reads });
    const s3 = new S3Storage({ client, reads });
    const localLoc: Location = { kind: 'local', path: FILE };
    const s3Loc: Location = { kind: 's3', bucket: 'bench', key: FILE };
    const mbps = (r: { bytes: number; seconds: number }) => {
      if (r.bytes !== bytes) { throw new Error(`read ${r.bytes} of ${bytes} bytes`); }
      return r.bytes / 1e6 / r.seconds;
    };
    // Warm the page cache once, then measure each way.
    await timed(local, localLoc, false);
    const localRead = mbps(await timed(local, localLoc, false));
    const s3Read = mbps(await timed(s3, s3Loc, false));
    const localSum = mbps(await timed(local, localLoc, true));
    const s3Sum = mbps(await timed(s3, s3Loc, true));
    const row: StorageBenchRow = {
      name: `storage ${(bytes / 1e6).toFixed(0)} MB`,
      bytes,
      localRead,
      s3Read,
      localSum,
      s3Sum,
      readRatio: localRead / s3Read,
      sumRatio: localSum / s3Sum,
    };
    log(
      `${row.name}: read local ${localRead.toFixed(0)} MB/s, S3 (s3rver) ${s3Read.toFixed(0)} MB/s (×${row.readRatio.toFixed(1)}); ` +
        `read+sum local ${localSum.toFixed(0)} MB/s, S3 ${s3Sum.toFixed(0)} MB/s (×${row.sumRatio.toFixed(1)})`,
    );
    return row;
  } finally {
    client.destroy();
    child.kill();
    fs.rmSync(s3dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  runStorageBench().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
