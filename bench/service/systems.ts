import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { createLogger, createRedis, topologyFor } from '@decisum/shared';
import { connectAny, deleteTopology } from '../../test/support/amqp';
import { SAMPLE, SAMPLE_ROWS, SAMPLE_SUMS } from '../../test/support/sample';
import { countLines } from './child';
import { floorQueue } from './floor';
import { NodeProcess } from './procs';

/**
 * The systems the service benchmark drives: decisum as its real API and executor processes, the
 * BullMQ anchor (bench/service/anchor.ts) in one process, and the floor (bench/service/floor.ts). Each runs under its own random
 * prefix on the shared Redis (and RabbitMQ), with its own DATA_DIR holding the reference sample.
 */

const ROOT = path.resolve(__dirname, '..', '..');

export interface Servers {
  redisUrl: string;
  amqpUrl: string;
}

export interface SystemOptions {
  apis: number;
  executors: number;
  /** EXECUTOR_CONCURRENCY; the product's default when absent. */
  executorConcurrency?: number;
  /** EXECUTOR_PREFETCH; the product's default when absent. */
  executorPrefetch?: number;
  /** Where `--cpu-prof` writes each process's profile (and where logs are kept); none when absent. */
  profileDir?: string;
  /** More node flags for every server process (e.g. --trace-gc); their output goes to the log. */
  nodeArgs?: string[];
}

export interface System {
  readonly name: string;
  /** Base URLs of the processes that take submissions. */
  readonly urls: string[];
  /** Processes whose CPU is counted per job, by name. */
  readonly processes: NodeProcess[];
  readonly setup: string;
  /** Every accepted job ended as it should: the list of what did not. */
  verify(ids: string[]): Promise<string[]>;
  /** Stops the processes (with SIGTERM, so profiles are written), deletes keys, queues and files. Idempotent. */
  cleanup(): Promise<void>;
}

export const SAMPLE_FILE = 'sample.csv';

function dataDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-svcbench-'));
  fs.copyFileSync(SAMPLE, path.join(dir, SAMPLE_FILE));
  return dir;
}

async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length) { await redis.unlink(...keys); }
    cursor = next;
  } while (cursor !== '0');
}

const profileArgs = (dir: string | undefined, name: string) => (dir ? ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-name', `${name}.cpuprofile`] : []);

/** Runs every step even when one fails; throws the first failure at the end. */
async function all(steps: (() => unknown)[]): Promise<void> {
  let first: Error | undefined;
  for (const step of steps) {
    await Promise.resolve()
      .then(step)
      .catch((err: unknown) => (first ??= err instanceof Error ? err : new Error(JSON.stringify(err))));
  }
  if (first) { throw first; }
}

interface Workspace {
  dir: string;
  logDir: string;
  processes: NodeProcess[];
  redis: Redis;
  /**
   * Starts a server process of the system, counted and stopped with it: its profile and log are
   * named `label`, `ts` runs a TypeScript script through ts-node.
   */
  start: (p: { name: string; label: string; script: string; env: Record<string, string>; readyMsg: string; ts?: boolean }) => Promise<NodeProcess>;
}

/**
 * A system's DATA_DIR, log folder and Redis client, and its cleanup: stop the processes, remove the
 * broker's queues (if any), the prefix's keys and the folders. The cleanup runs once, and
 * `register` receives it before any process starts, so an interrupted start leaves nothing.
 */
function workspace(
  servers: Servers,
  prefix: string,
  o: SystemOptions,
  register: (cleanup: () => Promise<void>) => void,
  removeQueues?: () => Promise<void>,
): Workspace & { cleanup: () => Promise<void> } {
  const logDir = o.profileDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-svcbench-logs-'));
  const processes: NodeProcess[] = [];
  const ws: Workspace = {
    dir: dataDir(),
    logDir,
    processes,
    redis: createRedis(servers.redisUrl, createLogger('svcbench', 'silent')),
    start: async (p) => {
      const proc = await NodeProcess.start({
        name: p.name,
        script: p.script,
        execArgv: [...profileArgs(o.profileDir, p.label), ...(o.nodeArgs ?? []), ...(p.ts ? ['-r', 'ts-node/register/transpile-only'] : [])],
        env: p.env,
        cwd: ROOT,
        logFile: path.join(logDir, `${p.label}.log`),
        readyMsg: p.readyMsg,
      });
      processes.push(proc);
      return proc;
    },
  };
  let done: Promise<void> | undefined;
  const cleanup = () =>
    (done ??= all([
      () => Promise.all(ws.processes.map((p) => p.stop())),
      () => removeQueues?.(),
      () => deleteKeys(ws.redis, prefix),
      () => {
        ws.redis.disconnect();
        fs.rmSync(ws.dir, { recursive: true, force: true });
        if (!o.profileDir) { fs.rmSync(ws.logDir, { recursive: true, force: true }); }
      },
    ]));
  register(cleanup);
  return { ...ws, cleanup };
}

/**
 * decisum as a deployment runs it: `node api/dist/main.js` and `node executor/dist/main.js`, with the
 * product's defaults but for the ports (0: the API's is read from its log), NODE_ENV=production as in
 * the image, and EXECUTOR_METRICS_PORT=0 (the counters still run; only the scrape endpoint is off).
 */
export async function startDecisum(servers: Servers, o: SystemOptions, register: (cleanup: () => Promise<void>) => void): Promise<System> {
  const prefix = `svcbench-${randomUUID().slice(0, 8)}`;
  const { dir, processes, redis, cleanup, start: startProcess } = workspace(servers, prefix, o, register, () =>
    deleteTopology(servers.amqpUrl, topologyFor(prefix, 1)),
  );

  const env: Record<string, string> = {
    NODE_ENV: 'production',
    REDIS_URL: servers.redisUrl,
    AMQP_URL: servers.amqpUrl,
    DATA_DIR: dir,
    DECISUM_PREFIX: prefix,
    PORT: '0',
    EXECUTOR_METRICS_PORT: '0',
    ...(o.executorConcurrency === undefined ? {} : { EXECUTOR_CONCURRENCY: String(o.executorConcurrency) }),
    ...(o.executorPrefetch === undefined ? {} : { EXECUTOR_PREFETCH: String(o.executorPrefetch) }),
  };
  const start = (kind: 'api' | 'executor', name: string) =>
    startProcess({
      name,
      label: `decisum-${name}`,
      script: path.join(ROOT, kind, 'dist', 'main.js'),
      env,
      readyMsg: kind === 'api' ? 'api listening' : 'executor ready',
    });
  const apis: NodeProcess[] = [];
  for (let i = 1; i <= o.apis; i++) { apis.push(await start('api', `api${i}`)); }
  await Promise.all(Array.from({ length: o.executors }, (_, i) => start('executor', `executor${i + 1}`)));

  const concurrency = o.executorConcurrency === undefined ? 'default' : String(o.executorConcurrency);
  const prefetch = o.executorPrefetch === undefined ? 'default' : String(o.executorPrefetch);
  return {
    name: 'decisum',
    urls: apis.map((p) => `http://127.0.0.1:${p.ready.port as number}`),
    processes,
    setup: `${o.apis} API, ${o.executors} executor (EXECUTOR_CONCURRENCY ${concurrency}, EXECUTOR_PREFETCH ${prefetch})`,
    cleanup,
    async verify(ids) {
      const pipeline = redis.pipeline();
      for (const id of ids) { pipeline.hmget(`${prefix}:job:${id}`, 'status', 'result'); }
      const rows = ((await pipeline.exec()) ?? []).map(([, r]) => r as [string | null, string | null]);
      const want = JSON.stringify(SAMPLE_SUMS.map((c) => c.sum));
      const problems: string[] = [];
      rows.forEach(([status, result], i) => {
        const r = result ? (JSON.parse(result) as { rows: number; columns: { sum: string }[] }) : undefined;
        if (status !== 'succeeded') { problems.push(`${ids[i]}: ${status}`); }
        else if (r?.rows !== SAMPLE_ROWS || JSON.stringify(r.columns.map((c) => c.sum)) !== want) { problems.push(`${ids[i]}: wrong result ${result}`); }
      });
      return problems;
    },
  };
}

/** The BullMQ anchor: one process, a node:http server and a worker with concurrency 8. */
export async function startAnchor(servers: Servers, o: SystemOptions, register: (cleanup: () => Promise<void>) => void): Promise<System> {
  const prefix = `svcbench-bull-${randomUUID().slice(0, 8)}`;
  const { dir, processes, redis, cleanup, start } = workspace(servers, prefix, o, register);

  const anchor = await start({
    name: 'anchor',
    label: 'bullmq-anchor',
    script: path.join(__dirname, 'anchor.ts'),
    ts: true,
    env: { NODE_ENV: 'production', REDIS_URL: servers.redisUrl, ANCHOR_PREFIX: prefix, DATA_DIR: dir, PORT: '0', ANCHOR_CONCURRENCY: '8' },
    readyMsg: 'anchor listening',
  });
  const lines = countLines(fs.readFileSync(SAMPLE));
  const { version } = JSON.parse(fs.readFileSync(require.resolve('bullmq/package.json'), 'utf8')) as { version: string };

  return {
    name: 'BullMQ',
    urls: [`http://127.0.0.1:${anchor.ready.port as number}`],
    processes,
    setup: `bullmq ${version}: 1 process, node:http server + worker (concurrency 8) reading the file and counting lines`,
    cleanup,
    async verify(ids) {
      const pipeline = redis.pipeline();
      for (const id of ids) { pipeline.hmget(`${prefix}:jobs:${id}`, 'finishedOn', 'returnvalue', 'failedReason'); }
      const rows = ((await pipeline.exec()) ?? []).map(([, r]) => r as (string | null)[]);
      const problems: string[] = [];
      rows.forEach(([finishedOn, returnvalue, failedReason], i) => {
        if (!finishedOn || failedReason) { problems.push(`${ids[i]}: not completed ${failedReason ?? ''}`); }
        else if (returnvalue !== String(lines)) { problems.push(`${ids[i]}: counted ${returnvalue} lines, not ${lines}`); }
      });
      return problems;
    },
  };
}

/**
 * The floor (bench/service/floor.ts): DESIGN.md's job path with none of decisum's code, as two
 * processes like decisum's defaults. What it reaches bounds what any implementation can.
 */
export async function startFloor(servers: Servers, o: SystemOptions, register: (cleanup: () => Promise<void>) => void): Promise<System> {
  const prefix = `svcbench-floor-${randomUUID().slice(0, 8)}`;
  const { dir, processes, redis, cleanup, start: startProcess } = workspace(servers, prefix, o, register, async () => {
    const conn = await connectAny(servers.amqpUrl);
    try {
      const ch = await conn.createChannel();
      await ch.deleteQueue(floorQueue(prefix));
      await ch.close();
    } finally {
      await conn.close();
    }
  });
  const env = { NODE_ENV: 'production', REDIS_URL: servers.redisUrl, AMQP_URL: servers.amqpUrl, FLOOR_PREFIX: prefix, DATA_DIR: dir, PORT: '0' };
  const start = (role: 'api' | 'worker') =>
    startProcess({
      name: role,
      label: `floor-${role}`,
      script: path.join(__dirname, 'floor.ts'),
      ts: true,
      env: { ...env, FLOOR_ROLE: role },
      readyMsg: role === 'api' ? 'floor listening' : 'floor worker ready',
    });
  const api = await start('api');
  await start('worker');
  const lines = countLines(fs.readFileSync(SAMPLE));
  return {
    name: 'floor',
    urls: [`http://127.0.0.1:${api.ready.port as number}`],
    processes,
    setup: 'the contract\'s bare job path, no decisum code: node:http API (1 Redis script, confirmed publish to a quorum queue) + worker (prefetch 32: claim script, read the file and count lines, finish script, ack)',
    cleanup,
    async verify(ids) {
      const pipeline = redis.pipeline();
      for (const id of ids) { pipeline.hmget(`${prefix}:job:${id}`, 'status', 'result'); }
      const rows = ((await pipeline.exec()) ?? []).map(([, r]) => r as (string | null)[]);
      const problems: string[] = [];
      rows.forEach(([status, result], i) => {
        if (status !== 'succeeded' || result !== String(lines)) { problems.push(`${ids[i]}: ${status} ${result}`); }
      });
      return problems;
    },
  };
}
