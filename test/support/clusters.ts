import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  freePort,
  privateServer,
  startRabbitNode,
  startRedisServer,
  withRedis,
  type PrivateServer,
  type RabbitNode,
} from './servers';
import { waitFor } from './wait';

/**
 * PRIVATE replicated servers for the failover tests (`npm run test:cluster`): a Redis master with a
 * replica watched by three Sentinels, and a RabbitMQ cluster. Each process has its own free
 * loopback port and folder; none of them is the machine's shared Redis or RabbitMQ.
 */

export interface HostPort {
  host: string;
  port: number;
}

export interface RedisSentinelSet {
  /** The master group name the sentinels monitor (REDIS_SENTINEL_NAME). */
  name: string;
  /** Every sentinel's address (REDIS_SENTINELS). */
  sentinels: HostPort[];
  /** The environment a decisum process needs to follow this set's master. */
  env: { REDIS_SENTINELS: string; REDIS_SENTINEL_NAME: string };
  /** The data servers: the first master, then its replicas. */
  servers: PrivateServer[];
  sentinelServers: PrivateServer[];
  /** The data server a majority of the sentinels names as master now. */
  master(): Promise<PrivateServer>;
  /**
   * Kills the current master (SIGKILL) and resolves once a majority of the sentinels names another
   * server master and that server answers as one. The old master stays down until restarted.
   */
  failover(): Promise<{ old: PrivateServer; promoted: PrivateServer }>;
  destroy(): Promise<void>;
}

export interface RedisSentinelOptions {
  replicas?: number;
  /** How long a master must be silent before the sentinels call it down. */
  downAfterMs?: number;
}

/** A master, its replicas (one by default) and three sentinels with a quorum of two. */
export async function startRedisSentinelSet(options: RedisSentinelOptions = {}): Promise<RedisSentinelSet> {
  const name = `decisum-${randomBytes(3).toString('hex')}`;
  const downAfterMs = options.downAfterMs ?? 1000;
  const master = await startRedisServer();
  const replicas = await Promise.all(
    Array.from({ length: options.replicas ?? 1 }, () => startRedisServer({ args: ['--replicaof', '127.0.0.1', String(master.port)] })),
  );
  const servers = [master, ...replicas];
  const sentinelServers: PrivateServer[] = [];
  try {
    for (let i = 0; i < 3; i++) { sentinelServers.push(await startSentinel(name, master.port, downAfterMs)); }
    const sentinels = sentinelServers.map((s) => ({ host: '127.0.0.1', port: s.port }));

    const namedMaster = async (): Promise<PrivateServer | undefined> => {
      const votes = new Map<number, number>();
      for (const s of sentinelServers) {
        const addr = await withRedis(s.url, (r) => r.call('SENTINEL', 'get-master-addr-by-name', name) as Promise<[string, string] | null>).catch(
          () => null,
        );
        if (addr) { votes.set(Number(addr[1]), (votes.get(Number(addr[1])) ?? 0) + 1); }
      }
      const [port] = [...votes.entries()].find(([, n]) => n >= 2) ?? [];
      return servers.find((s) => s.port === port);
    };

    // Ready when every replica has synced and every sentinel sees the replicas healthy and knows the
    // other sentinels: before that, killing the master would leave nobody to promote.
    const healthy = async () => {
      const current = await namedMaster();
      if (!current) { return undefined; }
      const replicasUp = servers.filter((r) => r !== current && r.alive);
      for (const r of replicasUp) {
        const info = await withRedis(r.url, (c) => c.info('replication'));
        if (!info.includes('role:slave') || !info.includes('master_link_status:up')) { return undefined; }
      }
      for (const s of sentinelServers) {
        const known = await withRedis(s.url, async (c) => ({
          replicas: ((await c.call('SENTINEL', 'replicas', name)) as string[][]).map(fields),
          sentinels: ((await c.call('SENTINEL', 'sentinels', name)) as unknown[]).length,
        }));
        const good = known.replicas.filter((r) => r.flags === 'slave' && r['master-link-status'] === 'ok');
        if (good.length < replicasUp.length || known.sentinels < sentinelServers.length - 1) { return undefined; }
      }
      return true;
    };
    await waitFor(healthy, { timeoutMs: 60_000, intervalMs: 200, what: `sentinels of ${name} to see every replica and each other` });

    const failover = async () => {
      await waitFor(healthy, { timeoutMs: 60_000, intervalMs: 200, what: `sentinels of ${name} to see a healthy replica` });
      const old = await waitFor(namedMaster, { what: `a master named by the sentinels of ${name}` });
      await old.stop('crash');
      const promoted = await waitFor(
        async () => {
          const m = await namedMaster();
          if (!m || m === old) { return undefined; }
          const role = await withRedis(m.url, (c) => roleOf(c));
          return role === 'master' ? m : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 100, what: `the sentinels of ${name} to promote a replica` },
      );
      return { old, promoted };
    };

    return {
      name,
      sentinels,
      env: { REDIS_SENTINELS: sentinels.map((s) => `${s.host}:${s.port}`).join(','), REDIS_SENTINEL_NAME: name },
      servers,
      sentinelServers,
      master: () => waitFor(namedMaster, { what: `a master named by the sentinels of ${name}` }),
      failover,
      async destroy() {
        await Promise.all([...sentinelServers, ...servers].map((s) => s.destroy()));
      },
    };
  } catch (err) {
    await Promise.all([...sentinelServers, ...servers].map((s) => s.destroy()));
    throw err;
  }
}

/** SENTINEL REPLICAS answers each replica as a flat name, value, name, value… list. */
function fields(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) { out[flat[i]] = flat[i + 1]; }
  return out;
}

async function roleOf(redis: Redis): Promise<string> {
  const [role] = (await redis.call('ROLE')) as [string];
  return role;
}

/** One Sentinel process with its own config file, which it rewrites as it learns the set. */
async function startSentinel(name: string, masterPort: number, downAfterMs: number): Promise<PrivateServer> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-sentinel-'));
  const logFile = path.join(dir, 'sentinel.log');
  const conf = path.join(dir, 'sentinel.conf');
  fs.writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      'daemonize no',
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
      `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
      `sentinel failover-timeout ${name} 10000`,
      `sentinel parallel-syncs ${name} 1`,
      '',
    ].join('\n'),
  );
  const url = `redis://127.0.0.1:${port}`;
  return privateServer({
    cmd: 'redis-server',
    args: [conf, '--sentinel'],
    dir,
    logFile,
    url,
    port,
    what: `redis sentinel on ${port}`,
    answers: () => withRedis(url, async (c) => (await c.ping()) === 'PONG'),
    readyTimeoutMs: 20_000,
    readyIntervalMs: 50,
    stopTimeoutMs: 10_000,
    destroyHow: 'crash',
  });
}

export interface RabbitCluster {
  nodes: RabbitNode[];
  /** Every node's AMQP URL, in node order. */
  urls: string[];
  /** The node that leads a quorum queue now (in vhost "/"), asked of a running node. */
  leaderOf(queue: string): Promise<RabbitNode>;
  destroy(): Promise<void>;
}

/**
 * size RabbitMQ nodes sharing one Erlang cookie (in a folder of the cluster's own), the others joined
 * to the first with rabbitmqctl join_cluster. A quorum queue declared afterwards has a member on each.
 */
export async function startRabbitCluster(size = 3): Promise<RabbitCluster> {
  const cookieHome = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-cookie-'));
  fs.writeFileSync(path.join(cookieHome, '.erlang.cookie'), randomBytes(16).toString('hex').toUpperCase(), { mode: 0o400 });
  const started = await Promise.allSettled(Array.from({ length: size }, () => startRabbitNode({ cookieHome })));
  const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const destroy = async () => {
    await Promise.all(nodes.map((n) => n.destroy()));
    fs.rmSync(cookieHome, { recursive: true, force: true });
  };
  try {
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) { throw failed.reason; }
    const [first, ...rest] = nodes;
    for (const node of rest) {
      await node.ctl('stop_app');
      await node.ctl('join_cluster', first.nodeName);
      await node.ctl('start_app');
    }
    await waitFor(
      async () => {
        const status = JSON.parse(await first.ctl('cluster_status', '--formatter', 'json')) as { running_nodes: string[] };
        return status.running_nodes.length === size ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: `${size} RabbitMQ nodes running as one cluster` },
    );
  } catch (err) {
    await destroy();
    throw err;
  }

  const leaderOf = async (queue: string) => {
    let lastError: unknown;
    for (const node of nodes) {
      try {
        const queues = JSON.parse(await node.ctl('list_queues', 'name', 'leader', '--formatter', 'json', '--quiet')) as {
          name: string;
          leader?: string;
        }[];
        const leader = nodes.find((n) => n.nodeName === queues.find((q) => q.name === queue)?.leader);
        if (leader) { return leader; }
        lastError = new Error(`no leader of ${queue} among ${JSON.stringify(queues)}`);
      } catch (err) {
        // a stopped node cannot answer: ask the next
        lastError = err;
      }
    }
    throw lastError instanceof Error ? lastError : new Error(`no node answered for ${queue}`);
  };

  return { nodes, urls: nodes.map((n) => n.url), leaderOf, destroy };
}
