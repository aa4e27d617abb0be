import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { waitFor } from './wait';

/**
 * PRIVATE Redis and RabbitMQ servers on their own free ports, for tests that stop or restart a
 * server. They never touch the machine's shared servers on 6379/5672.
 */

/** A port nothing listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const children = new Set<ChildProcess>();
// A crashed or interrupted test run must not leave private servers behind.
process.once('exit', () => {
  for (const c of children) {
    try {
      if (c.pid) { process.kill(-c.pid, 'SIGKILL'); }
    } catch {
      // already gone
    }
  }
});

function isRunning(child: ChildProcess | undefined): boolean {
  return child !== undefined && child.exitCode === null && child.signalCode === null;
}

/** A server process in its own process group, its output appended to logFile; killed if the test run dies. */
export function spawnServer(cmd: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): ChildProcess {
  const out = fs.openSync(logFile, 'a');
  // Its own process group, so a kill reaches the whole tree (rabbitmq-server is a shell around beam).
  const child = spawn(cmd, args, { env, stdio: ['ignore', out, out], detached: true });
  fs.closeSync(out);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Sends signal to the server's process group, then SIGKILL after timeoutMs; resolves once it exited. */
export async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
  if (!child || !isRunning(child)) { return; }
  const exited = once(child, 'exit');
  process.kill(-child.pid!, signal);
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }, timeoutMs);
  await exited;
  clearTimeout(timer);
}

export interface PrivateServer {
  url: string;
  port: number;
  /** Its process is running (it may not answer yet). */
  readonly alive: boolean;
  /** The server's own output, for failure messages. */
  logFile: string;
  /** Stops the server: 'crash' is SIGKILL, 'graceful' SIGTERM. */
  stop(how?: 'graceful' | 'crash'): Promise<void>;
  /** Starts it again on the same port with the same data directory; resolves when it answers. */
  start(): Promise<void>;
  restart(how?: 'graceful' | 'crash'): Promise<void>;
  /** Stops it for good and removes its files. */
  destroy(): Promise<void>;
}

export type StopHow = 'graceful' | 'crash';

export interface ServerProcess {
  /** The command and its arguments, the same at every start. */
  cmd: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** The server's own folder, removed by destroy(). */
  dir: string;
  logFile: string;
  url: string;
  port: number;
  /** What it is, for failure messages. */
  what: string;
  /** Resolves when the server answers; throws or resolves undefined while it does not yet. */
  answers(): Promise<unknown>;
  readyTimeoutMs: number;
  readyIntervalMs: number;
  /** After a graceful stop this long, SIGKILL. */
  stopTimeoutMs: number;
  /** How destroy() stops it: 'graceful' where a clean stop matters to the machine (RabbitMQ's epmd entry). */
  destroyHow: StopHow;
}

/**
 * A server process started with spec, answering before this resolves, with start, stop ('crash' is
 * SIGKILL, 'graceful' SIGTERM to its process group), restart and destroy.
 */
export async function privateServer(spec: ServerProcess): Promise<PrivateServer> {
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawnServer(spec.cmd, spec.args, spec.env ?? process.env, spec.logFile);
    await waitFor(
      async () => {
        if (!isRunning(child)) { throw new Error(`${spec.what} exited: ${tail(spec.logFile)}`); }
        return (await spec.answers()) ? true : undefined;
      },
      { timeoutMs: spec.readyTimeoutMs, intervalMs: spec.readyIntervalMs, what: spec.what },
    );
  };
  const stop = (how: StopHow = 'graceful') => stopChild(child, how === 'crash' ? 'SIGKILL' : 'SIGTERM', spec.stopTimeoutMs);
  await start();
  return {
    url: spec.url,
    port: spec.port,
    logFile: spec.logFile,
    get alive() {
      return isRunning(child);
    },
    start,
    stop,
    async restart(how?: StopHow) {
      await stop(how);
      await start();
    },
    async destroy() {
      await stop(spec.destroyHow);
      fs.rmSync(spec.dir, { recursive: true, force: true });
    },
  };
}

export interface RedisServerOptions {
  /** Keep data across restarts with an AOF fsynced on every write, as production runs it. */
  appendOnly?: boolean;
  /** More redis-server arguments, e.g. ['--replicaof', '127.0.0.1', '6390'] or ['--save', '900 1']. */
  args?: string[];
}

/** Runs fn with a short-lived client of the server at url, which it does not retry or queue for. */
export async function withRedis<T>(url: string, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return await fn(probe);
  } finally {
    // A client that never connected has nothing to close, and disconnect() would leave a timer behind.
    if (probe.status !== 'end') { probe.disconnect(); }
  }
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<PrivateServer> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-redis-'));
  const logFile = path.join(dir, 'redis.log');
  const url = `redis://127.0.0.1:${port}`;
  const persistence = options.appendOnly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--daemonize', 'no', '--dir', dir, ...persistence, ...(options.args ?? [])];
  return privateServer({
    cmd: 'redis-server',
    args,
    dir,
    logFile,
    url,
    port,
    what: `redis-server on ${port}`,
    // With an AOF, PING answers before the file is loaded; LOADING errors until then.
    answers: () => withRedis(url, async (probe) => (await probe.dbsize()) >= 0),
    readyTimeoutMs: 20_000,
    readyIntervalMs: 50,
    stopTimeoutMs: 10_000,
    destroyHow: 'crash',
  });
}

const RABBIT_BIN = '/usr/lib/rabbitmq/bin';

export interface RabbitNode extends PrivateServer {
  nodeName: string;
  /** Runs rabbitmqctl against this node (with its cookie); resolves with what it printed. */
  ctl(...args: string[]): Promise<string>;
}

export interface RabbitNodeOptions {
  /**
   * A folder holding the `.erlang.cookie` this node and its rabbitmqctl use (nodes that share one
   * can form a cluster); the user's own cookie when absent.
   */
  cookieHome?: string;
}

/**
 * A second RabbitMQ node with its own name, ports and mnesia directory (so a restart keeps its
 * quorum queues and their messages), no plugins, and none of the machine node's config files.
 * Starting one takes seconds: share one per test file.
 */
export async function startRabbitNode(options: RabbitNodeOptions = {}): Promise<RabbitNode> {
  const id = randomBytes(4).toString('hex');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-rabbit-'));
  const [port, distPort] = [await freePort(), await freePort()];
  const nodeName = `decisum-test-${id}@localhost`;
  const logFile = path.join(dir, 'server.log');
  const envFile = path.join(dir, 'rabbitmq-env.conf');
  const plugins = path.join(dir, 'enabled_plugins');
  const conf = path.join(dir, 'rabbitmq.conf');
  fs.writeFileSync(envFile, '');
  fs.writeFileSync(plugins, '[].\n');
  fs.writeFileSync(conf, 'loopback_users = none\n');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    RABBITMQ_CONF_ENV_FILE: envFile,
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(dir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: plugins,
    RABBITMQ_CONFIG_FILE: conf,
    RABBITMQ_PID_FILE: path.join(dir, 'pid'),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    // Inter-node traffic on loopback only, like the AMQP listener.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    ...(options.cookieHome ? { HOME: options.cookieHome } : {}),
  };
  const url = `amqp://guest:guest@127.0.0.1:${port}`;
  const server = await privateServer({
    cmd: path.join(RABBIT_BIN, 'rabbitmq-server'),
    args: [],
    env,
    dir,
    logFile,
    url,
    port,
    what: `RabbitMQ node ${nodeName} on ${port}`,
    answers: async () => {
      const conn = await amqp.connect(url, { timeout: 1000 });
      await conn.close();
      return true;
    },
    readyTimeoutMs: 60_000,
    readyIntervalMs: 200,
    // SIGTERM makes the wrapper script stop the node cleanly; SIGKILL to the group is a crash.
    stopTimeoutMs: 30_000,
    destroyHow: 'graceful',
  });
  const ctl = (...args: string[]) => run(path.join(RABBIT_BIN, 'rabbitmqctl'), ['-n', nodeName, ...args], env);
  return Object.assign(server, { nodeName, ctl });
}

/** Runs a command to its end; rejects with its output when it exits non-zero. */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) { reject(new Error(`${path.basename(cmd)} ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`)); }
      else { resolve(stdout); }
    });
  });
}

function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
