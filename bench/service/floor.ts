/*
 * The floor of the service benchmark: the least any implementation of DESIGN.md's job path can do
 * per job on this machine, with none of decisum's own code. Two processes, as decisum's defaults:
 *
 *   FLOOR_ROLE=api     node:http; POST /api/v1/jobs records the job in Redis (one script), publishes
 *                      it to a quorum queue on a confirm channel and answers 202 once the broker
 *                      confirmed; GET /api/v1/jobs/active and GET /api/v1/jobs/{id}[?wait=s].
 *   FLOOR_ROLE=worker  consumes (prefetch FLOOR_PREFETCH, 32), claims the job (one script), reads
 *                      the file and counts its lines as the BullMQ anchor does, writes the result
 *                      (one script) and only then acks.
 *
 * Left out, so that the floor is a floor: authentication, validation, rate and active-job limits,
 * the outbox, idempotency keys, leases and fencing, events, the results archive, logging, metrics.
 * Environment: REDIS_URL, AMQP_URL, FLOOR_PREFIX, DATA_DIR, FLOOR_ROLE, FLOOR_PREFETCH.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { countLines, env, log, readBody, send } from './child';

/** The floor's queue under a prefix; its Redis keys are `${prefix}:…`. */
export const floorQueue = (prefix: string) => `${prefix}.jobs`;

interface Names {
  queue: string;
  active: string;
  /** The Redis channel a finished job's id is published on. */
  done: string;
  job: (id: string) => string;
}

const names = (prefix: string): Names => ({
  queue: floorQueue(prefix),
  active: `${prefix}:active`,
  done: `${prefix}:done`,
  job: (id) => `${prefix}:job:${id}`,
});

const CREATE = `redis.call('HSET', KEYS[1], 'status', 'queued', 'file', ARGV[1], 'createdAt', ARGV[2]) redis.call('INCR', KEYS[2]) return 1`;
const CLAIM = `if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return 0 end redis.call('HSET', KEYS[1], 'status', 'running', 'startedAt', ARGV[1]) return 1`;
const FINISH = `if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'succeeded', 'result', ARGV[1], 'finishedAt', ARGV[2]) redis.call('DECR', KEYS[2])
redis.call('PUBLISH', KEYS[3], ARGV[3]) return 1`;

function redisClient(): Redis {
  const redis = new Redis(env('REDIS_URL'), { enableAutoPipelining: true });
  redis.defineCommand('floorCreate', { numberOfKeys: 2, lua: CREATE });
  redis.defineCommand('floorClaim', { numberOfKeys: 1, lua: CLAIM });
  redis.defineCommand('floorFinish', { numberOfKeys: 3, lua: FINISH });
  return redis;
}

type Scripts = Redis & {
  floorCreate(job: string, active: string, file: string, at: string): Promise<number>;
  floorClaim(job: string, at: string): Promise<number>;
  floorFinish(job: string, active: string, done: string, result: string, at: string, id: string): Promise<number>;
};

async function api(connection: amqp.ChannelModel, n: Names): Promise<() => Promise<void>> {
  const redis = redisClient() as Scripts;
  const subscriber = new Redis(env('REDIS_URL'), { lazyConnect: true });
  await subscriber.connect();
  const channel = await connection.createConfirmChannel();
  // Whoever waits on a job (GET ?wait=) is woken by the worker's PUBLISH of its id.
  const waiters = new Map<string, () => void>();
  await subscriber.subscribe(n.done);
  subscriber.on('message', (_channel, id: string) => waiters.get(id)?.());

  const publish = (body: Buffer) =>
    new Promise<void>((resolve, reject) => {
      channel.sendToQueue(n.queue, body, { persistent: true }, (err) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()));
    });

  const answerJob = async (res: http.ServerResponse, id: string, waitSeconds?: number) => {
    // A waiter is listening before the first read, so a finish between the two is not missed.
    let timer: NodeJS.Timeout | undefined;
    const woken =
      waitSeconds === undefined
        ? undefined
        : new Promise<void>((resolve) => {
            timer = setTimeout(resolve, waitSeconds * 1000);
            waiters.set(id, resolve);
          });
    let job = await redis.hgetall(n.job(id));
    if (woken && job.status !== undefined && job.status !== 'succeeded') {
      await woken;
      job = await redis.hgetall(n.job(id));
    }
    clearTimeout(timer);
    waiters.delete(id);
    if (job.status === undefined) { return send(res, 404, { error: 'no such job' }); }
    const iso = (ms?: string) => (ms === undefined ? undefined : new Date(Number(ms)).toISOString());
    send(res, 200, { id, status: job.status, createdAt: iso(job.createdAt), startedAt: iso(job.startedAt), finishedAt: iso(job.finishedAt) });
  };

  const route = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = req.url ?? '';
    if (req.method === 'POST' && url === '/api/v1/jobs') {
      const { file } = JSON.parse(await readBody(req)) as { file?: unknown };
      if (typeof file !== 'string') { return send(res, 400, { error: 'file is required' }); }
      const id = randomUUID();
      await redis.floorCreate(n.job(id), n.active, file, String(Date.now()));
      await publish(Buffer.from(JSON.stringify({ id, file })));
      return send(res, 202, { id, status: 'queued' });
    }
    if (req.method === 'GET' && url === '/api/v1/jobs/active') {
      return send(res, 200, { active: Number((await redis.get(n.active)) ?? 0) });
    }
    const m = /^\/api\/v1\/jobs\/([^/?]+)(?:\?wait=(\d+))?$/.exec(url);
    if (req.method === 'GET' && m) { return answerJob(res, m[1], m[2] === undefined ? undefined : Number(m[2])); }
    send(res, 404, { error: 'not found' });
  };
  const server = http.createServer((req, res) => {
    route(req, res).catch((err: Error) => send(res, 500, { error: err.message }));
  });
  server.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  log('floor listening', { port: (server.address() as AddressInfo).port });
  return async () => {
    server.close();
    server.closeAllConnections();
    redis.disconnect();
    subscriber.disconnect();
    await channel.close();
  };
}

async function worker(connection: amqp.ChannelModel, n: Names): Promise<() => Promise<void>> {
  const redis = redisClient() as Scripts;
  const channel = await connection.createChannel();
  await channel.prefetch(Number(process.env.FLOOR_PREFETCH ?? 32));
  const dataDir = env('DATA_DIR');
  await channel.consume(n.queue, (msg) => {
    if (!msg) { return; }
    const { id, file } = JSON.parse(msg.content.toString('utf8')) as { id: string; file: string };
    const key = n.job(id);
    const run = async () => {
      if (!(await redis.floorClaim(key, String(Date.now())))) { return; }
      const lines = countLines(await readFile(path.join(dataDir, file)));
      await redis.floorFinish(key, n.active, n.done, String(lines), String(Date.now()), id);
    };
    run().then(
      () => channel.ack(msg),
      (err: Error) => {
        log('job failed', { jobId: id, err: err.message });
        channel.nack(msg);
      },
    );
  });
  log('floor worker ready');
  return async () => {
    redis.disconnect();
    await channel.close();
  };
}

async function main(): Promise<void> {
  const n = names(env('FLOOR_PREFIX'));
  const connection = await amqp.connect(env('AMQP_URL'), { noDelay: true });
  const setup = await connection.createChannel();
  await setup.assertQueue(n.queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await setup.close();
  const stopRole = process.env.FLOOR_ROLE === 'worker' ? await worker(connection, n) : await api(connection, n);
  const stop = () => {
    stopRole()
      .then(() => connection.close())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    log('floor failed', { err: err instanceof Error ? err.stack : String(err) });
    process.exit(1);
  });
}
