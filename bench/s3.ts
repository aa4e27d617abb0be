/**
 * The S3 benchmark (`npm run bench -- --s3`): the 3·10⁶ × 100 decimal file in an S3 endpoint
 * (s3rver, in a child process, over bench/data/s3rver so the object is uploaded once), read
 *  - raw, with 1 and with N connections, straight from the endpoint: the ceiling here;
 *  - summed by decisum (the executor's sumLocation) with 1 connection and with N parallel parts,
 *    through the fault proxy (its own process) capped per connection with a delay to first byte;
 *  - the same with a share of the responses cut mid-body.
 * Every run is a child process (bench/s3-child.js) whose peak RSS is reported. Options:
 * --rows N, --s3-concurrency N, --s3-part-mb M, --s3-cap-mbps C, --s3-first-byte-ms D, --s3-cut-share S,
 * --s3-runs R (the median of R runs of each, but the single connection's, which its cap fixes; of
 * two, the faster).
 */
import { execFile, fork, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createS3Client, probeObject } from '../shared/src';
import type { ConnectionPlan } from '../test/support/fault-proxy';
import { DATA, dataFile } from './data';

const ROOT = path.resolve(__dirname, '..');
const CHILD = path.join(__dirname, 's3-child.js');
const BUCKET = 'bench';
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface S3BenchOptions {
  rows: number;
  concurrency: number;
  partBytes: number;
  /** Per-connection cap of the proxy, bytes per second. */
  capBytesPerSec: number;
  firstByteMs: number;
  cutShare: number;
  runs: number;
}

interface Measure {
  ms: number;
  cpuMs: number;
  bytes: number;
  rssMB: number;
  sums: string[];
  retries: number;
}

interface Row extends Measure {
  name: string;
  connections: number;
  through: string;
  mbps: number;
  exact?: boolean;
  /** CPU seconds the endpoint and the proxy spent on this run. */
  serverCpu: number;
  proxyCpu?: number;
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) { return 0; }
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : fallback;
}

export function s3BenchOptions(): S3BenchOptions {
  return {
    rows: arg('rows', 3_000_000),
    concurrency: arg('s3-concurrency', 16),
    partBytes: arg('s3-part-mb', 8) * 1024 * 1024,
    capBytesPerSec: arg('s3-cap-mbps', 25) * 1e6,
    firstByteMs: arg('s3-first-byte-ms', 20),
    cutShare: arg('s3-cut-share', 1 / 50),
    runs: arg('s3-runs', 1),
  };
}

/** s3rver in a child process, so the server does not share the reader's event loop. */
async function startS3rver(directory: string): Promise<{ endpoint: string; child: ChildProcess }> {
  const script = `
    const S3rver = require('s3rver');
    new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: ${JSON.stringify(directory)} })
      .run().then((a) => console.log('PORT ' + a.port));`;
  const child = spawn(process.execPath, ['-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  for await (const l of createInterface({ input: child.stdout })) {
    const m = /^PORT (\d+)$/.exec(l);
    if (m) { return { endpoint: `http://127.0.0.1:${m[1]}`, child }; }
  }
  throw new Error('s3rver did not start');
}

/** The fault proxy in its own process, with one plan for every connection. */
interface ProxyProcess {
  endpoint: string;
  pid?: number;
  stats(): Promise<{ cuts: number; requests: number }>;
  stop(): void;
}

async function startProxy(target: { host: string; port: number }, plan: ConnectionPlan): Promise<ProxyProcess> {
  const child = fork(path.join(__dirname, 'proxy-child.ts'), [], { execArgv: ['-r', 'ts-node/register/transpile-only'], cwd: ROOT });
  const reply = <T>(key: string) =>
    new Promise<T>((resolve) => {
      const on = (m: Record<string, unknown>) => {
        if (key in m) {
          child.off('message', on);
          resolve(m[key] as T);
        }
      };
      child.on('message', on);
    });
  const port = reply<number>('port');
  child.send({ setup: { target, plan, seed: 1 } });
  return {
    endpoint: `http://127.0.0.1:${await port}`,
    pid: child.pid,
    stats: () => {
      const s = reply<{ cuts: number; requests: number }>('stats');
      child.send({ stats: true });
      return s;
    },
    stop: () => child.disconnect(),
  };
}

/** Uploads the file unless the endpoint already holds an object of its size under that key. */
async function ensureObject(client: S3Client, file: string, key: string): Promise<void> {
  const size = fs.statSync(file).size;
  const existing = await probeObject(client, { bucket: BUCKET, key, where: key }).catch(() => undefined);
  if (existing?.size === size) { return; }
  await client.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
  const t0 = Date.now();
  await new Upload({ client, params: { Bucket: BUCKET, Key: key, Body: fs.createReadStream(file) }, partSize: 64 * 1024 * 1024, queueSize: 2 }).done();
  console.error(`uploaded ${key} (${(size / 1e6).toFixed(0)} MB) to s3rver in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

async function child(args: string[]): Promise<Measure> {
  const { stdout } = await promisify(execFile)(process.execPath, [CHILD, ...args], { cwd: ROOT, maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').pop() as string) as Measure;
}

export async function runS3Bench(o: S3BenchOptions, log: (line: string) => void = console.log): Promise<Row[]> {
  const file = await dataFile('decimal', o.rows);
  const key = path.basename(file);
  const size = fs.statSync(file).size;
  const dir = path.join(DATA, 's3rver');
  fs.mkdirSync(dir, { recursive: true });
  const s3rver = await startS3rver(dir);
  const url = new URL(s3rver.endpoint);
  const target = { host: url.hostname, port: Number(url.port) };
  const client = createS3Client({ endpoint: s3rver.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: CREDENTIALS }, { maxAttempts: 1 });
  const rows: Row[] = [];
  log(`load average at start: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} cores`);
  try {
    await ensureObject(client, file, key);
    const reference = (await child(['local', file])).sums;
    const N = String(o.concurrency);
    const part = String(o.partBytes);
    const once = async (name: string, mode: 'read' | 'sum', connections: number, proxy?: ProxyProcess, through = 'none'): Promise<Row> => {
      const before = [cpuSeconds(s3rver.child.pid), cpuSeconds(proxy?.pid)];
      const m = await child([mode, proxy?.endpoint ?? s3rver.endpoint, BUCKET, key, String(connections), part]);
      if (m.bytes !== size) { throw new Error(`${name}: read ${m.bytes} of ${size} bytes`); }
      const row: Row = {
        ...m,
        name,
        connections,
        through,
        mbps: size / 1e6 / (m.ms / 1000),
        serverCpu: cpuSeconds(s3rver.child.pid) - before[0],
        proxyCpu: proxy ? cpuSeconds(proxy.pid) - before[1] : undefined,
      };
      if (mode === 'sum') { row.exact = JSON.stringify(m.sums) === JSON.stringify(reference); }
      log(
        `${name} (${through}): ${row.mbps.toFixed(0)} MB/s, ${m.rssMB.toFixed(0)} MB RSS, ${m.retries} retries, CPU s: reader ${(m.cpuMs / 1000).toFixed(1)}, ` +
          `s3rver ${row.serverCpu.toFixed(1)}${proxy ? `, proxy ${row.proxyCpu?.toFixed(1)}` : ''}${row.exact === undefined ? '' : `, sums exact: ${row.exact}`}`,
      );
      return row;
    };
    const measure = async (name: string, mode: 'read' | 'sum', connections: number, proxy?: ProxyProcess, through = 'none'): Promise<Row> => {
      const runs: Row[] = [];
      for (let r = 0; r < (connections === 1 && proxy ? 1 : o.runs); r++) { runs.push(await once(name, mode, connections, proxy, through)); }
      // The median (of two, the faster); every run's sums must be exact, the peak RSS is the highest
      // seen and the retries are all runs' (as the proxy's cuts are).
      const median = runs.sort((a, b) => a.ms - b.ms)[Math.floor((runs.length - 1) / 2)];
      const row = {
        ...median,
        exact: runs.every((r) => r.exact !== false) && median.exact,
        rssMB: Math.max(...runs.map((r) => r.rssMB)),
        retries: runs.reduce((n, r) => n + r.retries, 0),
      };
      rows.push(row);
      return row;
    };

    // Warm the page cache under s3rver's copy, then measure.
    await child(['read', s3rver.endpoint, BUCKET, key, N, part]);
    const raw1 = await measure('raw read, 1 connection', 'read', 1);
    const rawN = await measure(`raw read, ${N} connections`, 'read', o.concurrency);
    await measure(`decisum, ${N} parts`, 'sum', o.concurrency);

    const shape = `${(o.capBytesPerSec / 1e6).toFixed(0)} MB/s per connection, ${o.firstByteMs} ms to first byte`;
    const capped: ConnectionPlan = { throttleBytesPerSec: o.capBytesPerSec, firstByteDelayMs: o.firstByteMs };
    let proxy = await startProxy(target, capped);
    const single = await measure('decisum, 1 connection', 'sum', 1, proxy, shape);
    const parallel = await measure(`decisum, ${N} parts`, 'sum', o.concurrency, proxy, shape);
    proxy.stop();

    proxy = await startProxy(target, { ...capped, cutShare: o.cutShare });
    const cutShape = `${shape}, 1 in ${Math.round(1 / o.cutShare)} responses cut`;
    const cut = await measure(`decisum, ${N} parts`, 'sum', o.concurrency, proxy, cutShape);
    const { cuts, requests } = await proxy.stats();
    proxy.stop();

    const ceiling = Math.min(o.concurrency * (o.capBytesPerSec / 1e6), rawN.mbps);
    const peak = Math.max(...rows.map((r) => r.rssMB));
    log('');
    log(`| run | connections | proxy | MB/s | peak RSS | retries (all runs) | sums exact | CPU s: reader, s3rver, proxy |`);
    log(`|---|---:|---|---:|---:|---:|---|---|`);
    for (const r of rows) {
      const cpu = [r.cpuMs / 1000, r.serverCpu, r.proxyCpu].filter((x): x is number => x !== undefined).map((x) => x.toFixed(1));
      log(`| ${r.name} | ${r.connections} | ${r.through} | ${r.mbps.toFixed(0)} | ${r.rssMB.toFixed(0)} MB | ${r.retries} | ${r.exact ?? ''} | ${cpu.join(', ')} |`);
    }
    log('');
    log(`ceiling here: raw ${raw1.mbps.toFixed(0)} MB/s on 1 connection, ${rawN.mbps.toFixed(0)} MB/s on ${N}; min(${N} × cap, raw) = ${ceiling.toFixed(0)} MB/s`);
    const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
    const speedup = parallel.mbps / single.mbps;
    log(`parallel ÷ single connection through the proxy: ${speedup.toFixed(1)}× (target ≥ 10×: ${verdict(speedup >= 10)})`);
    log(`parallel ÷ ceiling: ${((100 * parallel.mbps) / ceiling).toFixed(0)} % (target ≥ 70 %: ${verdict(parallel.mbps >= 0.7 * ceiling)})`);
    log(
      `with cuts (${cuts} of ${requests} responses cut, ${cut.retries} resumed, over ${o.runs} run${o.runs > 1 ? 's' : ''}): ${((100 * cut.mbps) / ceiling).toFixed(0)} % of the ceiling, sums exact: ${cut.exact} ` +
        `(target ≥ 60 % and exact: ${verdict(cut.mbps >= 0.6 * ceiling && cut.exact === true)})`,
    );
    log(`peak RSS: ${peak.toFixed(0)} MB (target < 300 MB: ${verdict(peak < 300)})`);
    log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    return rows;
  } finally {
    client.destroy();
    s3rver.child.kill();
  }
}

if (require.main === module) {
  runS3Bench(s3BenchOptions()).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
