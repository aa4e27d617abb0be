import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Cluster, type ServiceProcess } from '../support/processes';
import { freePort, startRabbitNode, startRedisServer, type PrivateServer, type RabbitNode } from '../support/servers';
import { waitFor } from '../support/wait';

/**
 * The container health check (scripts/healthcheck.js, the image's HEALTHCHECK) against real
 * processes: the executor's /readyz follows its Redis and RabbitMQ connections, so an executor
 * stuck reconnecting reports unhealthy, and healthy again once it is back. Private servers, so
 * stopping them touches nothing shared.
 */

const SCRIPT = path.resolve(__dirname, '..', '..', 'scripts', 'healthcheck.js');

let redis: PrivateServer;
let rabbit: RabbitNode;
let cluster: Cluster;
let executor: ServiceProcess;
let metricsPort: number;

beforeAll(async () => {
  [redis, rabbit] = await Promise.all([startRedisServer(), startRabbitNode()]);
  cluster = await Cluster.start({ redisUrl: redis.url, amqpUrl: rabbit.url, apis: 1 });
  metricsPort = await freePort();
  executor = await cluster.addExecutor({ EXECUTOR_METRICS_PORT: String(metricsPort) });
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
  await Promise.all([redis?.destroy(), rabbit?.destroy()]);
});

/** The health check's exit code, run as Docker runs it in the container of that role. */
async function healthcheck(role: 'api' | 'executor'): Promise<number> {
  const env =
    role === 'api'
      ? { DECISUM_ROLE: 'api', PORT: new URL(cluster.url).port }
      : { DECISUM_ROLE: 'executor', EXECUTOR_METRICS_PORT: String(metricsPort) };
  try {
    await promisify(execFile)(process.execPath, [SCRIPT], { env: { PATH: process.env.PATH, ...env } });
    return 0;
  } catch (err) {
    return (err as { code: number }).code;
  }
}

async function readiness(): Promise<{ status: number; body: { status: string; checks: Record<string, boolean> } }> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
  return { status: res.status, body: (await res.json()) as { status: string; checks: Record<string, boolean> } };
}

const untilHealth = (role: 'api' | 'executor', want: number) =>
  waitFor(async () => ((await healthcheck(role)) === want ? true : undefined), {
    timeoutMs: 60_000,
    intervalMs: 250,
    what: `the ${role} health check to exit ${want}`,
  });

test('a connected executor and API are healthy', async () => {
  expect(await readiness()).toEqual({ status: 200, body: { status: 'ready', checks: { redis: true, rabbitmq: true, accepting: true }, redisEpoch: expect.objectContaining({ changes: 0 }) as unknown } });
  expect(await healthcheck('executor')).toBe(0);
  expect(await healthcheck('api')).toBe(0);
});

test('an executor cut off from RabbitMQ is unhealthy until it reconnects', async () => {
  await rabbit.stop('graceful');
  await untilHealth('executor', 1);
  expect(await readiness()).toEqual({ status: 503, body: { status: 'unavailable', checks: { redis: true, rabbitmq: false, accepting: true }, redisEpoch: expect.objectContaining({ changes: 0 }) as unknown } });
  // Alive all the while: liveness is not readiness.
  expect((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status).toBe(200);
  expect(executor.alive).toBe(true);

  await rabbit.start();
  await untilHealth('executor', 0);
  expect((await readiness()).body.checks).toEqual({ redis: true, rabbitmq: true, accepting: true });
}, 120_000);

test('an executor and an API cut off from Redis are unhealthy until it is back', async () => {
  await redis.stop('crash');
  await untilHealth('executor', 1);
  expect(await readiness()).toEqual({ status: 503, body: { status: 'unavailable', checks: { redis: false, rabbitmq: true, accepting: true }, redisEpoch: expect.objectContaining({ changes: 0 }) as unknown } });
  await untilHealth('api', 1);

  await redis.start();
  await untilHealth('executor', 0);
  await untilHealth('api', 0);
}, 120_000);
