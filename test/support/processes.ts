import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { JobStore, createLogger, createRedis, isFinal, loadConfig, topologyFor, type Job, type Topology } from '@decisum/shared';
import { connectAny, deleteTopology } from './amqp';
import { untilNotified, waitFor } from './wait';

/**
 * Real API and executor processes, started from the built `api/dist/main.js` and
 * `executor/dist/main.js` with an environment, as a deployment runs them: tests kill them for real.
 */

const ROOT = path.resolve(__dirname, '..', '..');
/** What each kind of process runs: the built services, or a test-only entry under ts-node. */
const ENTRIES = {
  api: { args: [path.join(ROOT, 'api', 'dist', 'main.js')], ready: 'api listening' },
  executor: { args: [path.join(ROOT, 'executor', 'dist', 'main.js')], ready: 'executor ready' },
  'executor-crash-after-write': {
    args: ['-r', 'ts-node/register/transpile-only', path.join(ROOT, 'test', 'support', 'executor-crash-after-write.ts')],
    ready: 'executor ready',
  },
} as const;
export type ServiceKind = keyof typeof ENTRIES;
// One lock per checkout: two checkouts on one machine build their own trees side by side.
const LOCK = path.join(os.tmpdir(), `decisum-test-build-${createHash('sha256').update(ROOT).digest('hex').slice(0, 12)}.lock`);

let built: Promise<void> | undefined;

/**
 * `tsc -b api executor` once per process, under a lock directory so parallel jest workers never
 * build at the same time (the second build finds everything up to date and is quick).
 */
export function buildOnce(): Promise<void> {
  built ??= (async () => {
    const deadline = Date.now() + 180_000;
    for (;;) {
      try {
        fs.mkdirSync(LOCK);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') { throw err; }
        // A lock older than any build is left by a killed run.
        const age = Date.now() - (fs.statSync(LOCK, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
        if (age > 180_000) { fs.rmSync(LOCK, { recursive: true, force: true }); }
        if (Date.now() > deadline) { throw new Error(`build lock ${LOCK} held for too long`); }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    try {
      await promisify(execFile)(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', 'api', 'executor'], {
        cwd: ROOT,
      }).catch((err: { stdout?: string; stderr?: string }) => {
        throw new Error(`build failed: tsc -b api executor\n${err.stdout ?? ''}${err.stderr ?? ''}`);
      });
    } finally {
      fs.rmSync(LOCK, { recursive: true, force: true });
    }
  })();
  return built;
}

export interface LogLine {
  msg?: string;
  level?: number;
  jobId?: string;
  [field: string]: unknown;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) { c.kill('SIGKILL'); }
});

/** One API or executor process and everything it printed. */
export class ServiceProcess {
  readonly lines: LogLine[] = [];
  private readonly raw: string[] = [];
  private readonly listeners = new Set<() => void>();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    running.add(child);
    this.exited = once(child, 'exit').then(([code, signal]) => {
      running.delete(child);
      this.notify();
      return { code: code as number | null, signal: signal as NodeJS.Signals | null };
    });
    const take = (stream: NodeJS.ReadableStream | null) => {
      let rest = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        const parts = (rest + chunk).split('\n');
        rest = parts.pop() ?? '';
        for (const line of parts) { this.add(line); }
      });
      stream?.on('end', () => rest && this.add(rest));
    };
    take(child.stdout);
    take(child.stderr);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private add(line: string): void {
    this.raw.push(line);
    try {
      this.lines.push(JSON.parse(line) as LogLine);
    } catch {
      this.lines.push({ msg: line });
    }
    this.notify();
  }

  private notify(): void {
    for (const l of this.listeners) { l(); }
  }

  /** The first log line (from the start) that matches, waiting for it until timeoutMs. */
  waitForLog(match: (l: LogLine) => boolean, { timeoutMs = 30_000, what = 'a log line' } = {}): Promise<LogLine> {
    return untilNotified(
      this.listeners,
      () => {
        const found = this.lines.find(match);
        if (found) { return found; }
        if (!this.alive) { throw new Error(`${this.name} exited before logging ${what}\n${this.tail()}`); }
        return undefined;
      },
      timeoutMs,
      () => new Error(`${this.name}: no ${what} within ${timeoutMs} ms\n${this.tail()}`),
    );
  }

  logged(msg: string | RegExp, jobId?: string): LogLine[] {
    return this.lines.filter(
      (l) => (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg ?? '')) && (jobId === undefined || l.jobId === jobId),
    );
  }

  tail(n = 40): string {
    return this.raw
      .slice(-n)
      .map((l) => `  [${this.name}] ${l}`)
      .join('\n');
  }

  /** kill -9: no handler runs, nothing is flushed, the broker and Redis see a dead peer. */
  async kill(): Promise<void> {
    if (this.alive) { this.child.kill('SIGKILL'); }
    await this.exited;
  }

  /** SIGTERM, then the exit code (SIGKILL after timeoutMs, which fails the caller's expectation of 0). */
  async terminate(timeoutMs = 30_000): Promise<number | null> {
    if (this.alive) { this.child.kill('SIGTERM'); }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const { code } = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/** The AWS SDK's switch for its Node 20 notice, as jest.config.js set it, so child processes say no more than the tests do. */
function sdkNotice(): Record<string, string> {
  const value = process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
  return value === undefined ? {} : { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: value };
}

/** Starts a process of this kind with exactly this environment (plus PATH) and waits until it is ready. */
export async function startService(kind: ServiceKind, name: string, env: Record<string, string>): Promise<ServiceProcess> {
  await buildOnce();
  const child = spawn(process.execPath, ENTRIES[kind].args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', ...sdkNotice(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc = new ServiceProcess(name, child);
  await proc.waitForLog((l) => l.msg === ENTRIES[kind].ready, {
    timeoutMs: 30_000,
    what: `${kind} readiness`,
  });
  return proc;
}

export interface ApiProcess extends ServiceProcess {
  url: string;
  /** Its METRICS_PORT endpoint, when that port is not 0. */
  metricsUrl?: string;
}

export interface ClusterOptions {
  /** REDIS_URL; with REDIS_SENTINELS in env, only its password and database count (the test's own client follows the sentinels too). */
  redisUrl: string;
  /** AMQP_URL: one node, or several separated by commas. */
  amqpUrl: string;
  apis?: number;
  executors?: number;
  /** Environment for every process, over the test defaults. */
  env?: Record<string, string>;
}

/**
 * API and executor processes sharing a fresh DECISUM_PREFIX and DATA_DIR, plus a JobStore on the
 * same Redis for the test to look at the record directly.
 */
export class Cluster {
  readonly apis: ApiProcess[] = [];
  readonly executors: ServiceProcess[] = [];
  readonly prefix = `rel-${randomUUID().slice(0, 8)}`;
  readonly dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-rel-'));
  readonly env: Record<string, string>;
  readonly topology: Topology;
  readonly redis: Redis;
  readonly store: JobStore;
  private serial = 0;

  constructor(private readonly options: ClusterOptions) {
    this.env = {
      REDIS_URL: options.redisUrl,
      AMQP_URL: options.amqpUrl,
      DATA_DIR: this.dataDir,
      DECISUM_PREFIX: this.prefix,
      PORT: '0',
      EXECUTOR_METRICS_PORT: '0',
      METRICS_PORT: '0',
      EXECUTOR_CONCURRENCY: '1',
      EXECUTOR_THREADS: '1',
      LOG_LEVEL: 'info',
      HEARTBEAT_MS: '200',
      LEASE_MS: '1500',
      RETRY_BACKOFF_MS: '50',
      SWEEP_INTERVAL_MS: '200',
      PUBLISH_GRACE_MS: '1000',
      SHUTDOWN_GRACE_MS: '5000',
      MAX_ATTEMPTS: '5',
      READ_BACKOFF_MS: '20',
      READ_RETRIES: '3',
      ...options.env,
    };
    const config = { prefix: this.prefix, ttlSeconds: 3600, leaseMs: Number(this.env.LEASE_MS) };
    this.topology = topologyFor(this.prefix, Number(this.env.MAX_ATTEMPTS));
    const logger = createLogger('test', 'silent');
    this.redis = this.env.REDIS_SENTINELS ? createRedis(loadConfig(this.env), logger) : createRedis(options.redisUrl, logger);
    this.store = new JobStore(this.redis, config);
  }

  static async start(options: ClusterOptions): Promise<Cluster> {
    const cluster = new Cluster(options);
    try {
      for (let i = 0; i < (options.apis ?? 1); i++) { await cluster.addApi(); }
      await Promise.all(Array.from({ length: options.executors ?? 0 }, () => cluster.addExecutor()));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  get url(): string {
    return this.apis[0].url;
  }

  async addApi(env: Record<string, string> = {}): Promise<ApiProcess> {
    const proc = (await startService('api', `api${++this.serial}`, { ...this.env, ...env })) as ApiProcess;
    const port = proc.lines.find((l) => l.msg === 'api listening')?.port as number;
    proc.url = `http://127.0.0.1:${port}`;
    const metricsPort = proc.lines.find((l) => l.msg === 'api listening')?.metricsPort as number | undefined;
    if (metricsPort !== undefined) { proc.metricsUrl = `http://127.0.0.1:${metricsPort}`; }
    this.apis.push(proc);
    return proc;
  }

  async addExecutor(env: Record<string, string> = {}, kind: Exclude<ServiceKind, 'api'> = 'executor'): Promise<ServiceProcess> {
    const proc = await startService(kind, `exec${++this.serial}`, { ...this.env, ...env });
    this.executors.push(proc);
    return proc;
  }

  writeFile(rel: string, content: string | Buffer): string {
    const full = path.join(this.dataDir, rel);
    fs.mkdirSync(path.dirname(full), { recursive: true });
    fs.writeFileSync(full, content);
    return rel;
  }

  /** Every process's last lines, for a failure message. */
  logs(n = 30): string {
    return [...this.apis, ...this.executors].map((p) => p.tail(n)).join('\n');
  }

  async submit(body: object, headers: Record<string, string> = {}, api = this.url): Promise<{ status: number; body: unknown }> {
    const res = await fetch(`${api}/api/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  }

  async active(api = this.url): Promise<{ active: number; queued: number; running: number }> {
    const res = await fetch(`${api}/api/v1/jobs/active`);
    if (res.status !== 200) { throw new Error(`GET /active answered ${res.status}`); }
    return (await res.json()) as { active: number; queued: number; running: number };
  }

  async waitForJob(id: string, timeoutMs = 60_000): Promise<Job> {
    return waitFor(
      async () => {
        const job = await this.store.get(id);
        return job && isFinal(job.status) ? job : undefined;
      },
      { timeoutMs, intervalMs: 100, what: `job ${id} to finish` },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.logs()}`);
    });
  }

  /** The job as `GET /api/v1/jobs/{id}` answers it (Redis, or the results archive), or undefined for any other answer than 200. */
  async fetchJob(id: string, api = this.url): Promise<Job | undefined> {
    const res = await fetch(`${api}/api/v1/jobs/${id}`).catch(() => undefined);
    return res?.status === 200 ? ((await res.json()) as Job) : undefined;
  }

  /** Waits for the API to answer the job final, as a client sees it (a 404 or 503 meanwhile is waited through). */
  async waitForJobViaApi(id: string, timeoutMs = 90_000): Promise<Job> {
    return waitFor(
      async () => {
        const job = await this.fetchJob(id);
        return job && isFinal(job.status) ? job : undefined;
      },
      { timeoutMs, intervalMs: 200, what: `the API to answer job ${id} final` },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.logs()}`);
    });
  }

  /** Log lines with this message from every process, each with the process's name. */
  loggedEverywhere(msg: string | RegExp): (LogLine & { process: string })[] {
    return [...this.apis, ...this.executors].flatMap((p) => p.logged(msg).map((l) => ({ ...l, process: p.name })));
  }

  /** Waits for `GET /api/v1/jobs/active` to answer 0, as a client sees it. */
  async waitForNoActive(timeoutMs = 30_000): Promise<void> {
    await waitFor(async () => ((await this.active()).active === 0 ? true : undefined), {
      timeoutMs,
      intervalMs: 100,
      what: 'active to return to 0',
    }).catch(async (err: Error) => {
      throw new Error(`${err.message}; last ${JSON.stringify(await this.active().catch(() => '?'))}\n${this.logs()}`);
    });
  }

  /** Messages ready in a queue of this cluster (the work queue unless named). */
  async queueDepth(queue = this.topology.jobs): Promise<number> {
    const conn = await connectAny(this.options.amqpUrl);
    try {
      const ch = await conn.createChannel();
      return (await ch.checkQueue(queue)).messageCount;
    } finally {
      await conn.close();
    }
  }

  /** Publishes raw bytes to the work queue, as a broken or hostile producer would. */
  async publishRaw(content: Buffer): Promise<void> {
    const conn = await connectAny(this.options.amqpUrl);
    try {
      const ch = await conn.createConfirmChannel();
      ch.sendToQueue(this.topology.jobs, content, { persistent: true });
      await ch.waitForConfirms();
    } finally {
      await conn.close();
    }
  }

  async stop(): Promise<void> {
    await Promise.all([...this.apis, ...this.executors].map((p) => p.kill()));
    await deleteTopology(this.options.amqpUrl, this.topology).catch(() => undefined);
    await this.store.destroy().catch(() => undefined);
    this.redis.disconnect();
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}
