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

export function isRunning(child: ChildProcess | undefined): boolean {
  return child !== undefined && child.exitCode === null && child.signalCode === null;
}

export function spawnServer(cmd: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): ChildProcess {
  const out = fs.openSync(logFile, 'a');
  // Its own process group, so a kill reaches the whole tree (rabbitmq-server is a shell around beam).
  const child = spawn(cmd, args, { env, stdio: ['ignore', out, out], detached: true });
  fs.closeSync(out);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

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

/** start, stop, restart and destroy (stop, then remove the server's folder) of a private server. */
export function lifecycle(start: () => Promise<void>, stop: (how?: StopHow) => Promise<void>, dir: string, destroyHow: StopHow) {
  return {
    start,
    stop,
    async restart(how?: StopHow) {
      await stop(how);
      await start();
    },
    async destroy() {
      await stop(destroyHow);
      fs.rmSync(dir, { recursive: true, force: true });
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
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    child = spawnServer('redis-server', args, process.env, logFile);
    await waitFor(
      async () => {
        if (child?.exitCode !== null) { throw new Error(`redis-server exited: ${tail(logFile) }`); }
        // With an AOF, PING answers before the file is loaded; LOADING errors until then.
        return withRedis(url, async (probe) => (await probe.dbsize()) >= 0);
      },
      { timeoutMs: 20_000, intervalMs: 50, what: `redis-server on ${port}` },
    );
  };
  const stop = async (how: 'graceful' | 'crash' = 'graceful') => stopChild(child, how === 'crash' ? 'SIGKILL' : 'SIGTERM', 10_000);

  await start();
  return {
    url,
    port,
    logFile,
    get alive() {
      return isRunning(child);
    },
    ...lifecycle(start, stop, dir, 'crash'),
  };
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
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    child = spawnServer(path.join(RABBIT_BIN, 'rabbitmq-server'), [], env, logFile);
    await waitFor(
      async () => {
        if (child?.exitCode !== null) { throw new Error(`rabbitmq-server exited: ${tail(logFile) }`); }
        const conn = await amqp.connect(url, { timeout: 1000 });
        await conn.close();
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: `RabbitMQ node ${nodeName} on ${port}` },
    );
  };
  // SIGTERM makes the wrapper script stop the node cleanly; SIGKILL to the group is a crash.
  const stop = async (how: 'graceful' | 'crash' = 'graceful') => stopChild(child, how === 'crash' ? 'SIGKILL' : 'SIGTERM', 30_000);

  const ctl = (...args: string[]) => run(path.join(RABBIT_BIN, 'rabbitmqctl'), ['-n', nodeName, ...args], env);

  await start();
  return {
    url,
    port,
    nodeName,
    logFile,
    ctl,
    get alive() {
      return isRunning(child);
    },
    ...lifecycle(start, stop, dir, 'graceful'),
  };
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

export function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
