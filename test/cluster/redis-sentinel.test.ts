import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AppError, createLogger, createRedis, isRedisUnavailable, JobStore, jobStoreOptions, loadConfig, type Config } from '@decisum/shared';
import { startRedisSentinelSet, type RedisSentinelSet } from '../support/clusters';
import { waitFor } from '../support/wait';

/**
 * A private Redis master, one replica and three sentinels. decisum's clients, configured with
 * REDIS_SENTINELS, follow the master through a real failover (the master is killed with -9), and
 * the job store never reports a change that only the master held.
 */

const logger = createLogger('test', 'silent');
const options = { step: 10, offset: 0 };
const result = { rows: 1, columns: [{ name: 'a', index: 0, sum: '1', value: 1, count: 1 }] };

let set: RedisSentinelSet;
let config: Config;
const clients: Redis[] = [];

beforeAll(async () => {
  set = await startRedisSentinelSet();
  // REDIS_URL names a port nothing listens on: in Sentinel mode only its password and database count.
  config = loadConfig({ ...set.env, REDIS_URL: 'redis://127.0.0.1:1', DECISUM_PREFIX: `t-sentinel-${randomUUID().slice(0, 8)}`, REDIS_WAIT_TIMEOUT_MS: '2000' });
}, 120_000);

afterAll(async () => {
  for (const c of clients) { c.disconnect(); }
  await set?.destroy();
});

/** Each test works under a prefix of its own, so it counts only its jobs. */
function storeOn(redis: Redis, prefix: string): JobStore {
  return new JobStore(redis, { ...jobStoreOptions(config), prefix });
}

const freshPrefix = () => `${config.prefix}-${randomUUID().slice(0, 8)}`;

function client(failFast = false): Redis {
  const c = createRedis(config, logger, { failFast });
  clients.push(c);
  return c;
}

async function portOf(redis: Redis): Promise<number> {
  return Number(((await redis.config('GET', 'port')) as string[])[1]);
}

test('with the replica down, a job change is refused as STORE_UNAVAILABLE instead of acknowledged', async () => {
  expect(config.redisWait).toEqual({ replicas: 1, timeoutMs: 2000 });
  const redis = client();
  const prefix = freshPrefix();
  const store = storeOn(redis, prefix);
  const { job } = await store.create({ file: 'a.csv', options });
  const replica = set.servers[1];

  await replica.stop('graceful');
  try {
    const refused = await store.create({ file: 'b.csv', options }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AppError);
    expect(refused).toMatchObject({ code: 'STORE_UNAVAILABLE', status: 503 });
    expect(await store.claim(job.id).catch((e: unknown) => e)).toMatchObject({ code: 'STORE_UNAVAILABLE' });
    // Without the wait, the same master takes the change: it is the wait that refused.
    const unguarded = new JobStore(redis, { ...jobStoreOptions(config), prefix, wait: undefined });
    await expect(unguarded.create({ file: 'c.csv', options })).resolves.toMatchObject({ created: true });
  } finally {
    await replica.start();
  }
  await waitFor(() => store.create({ file: 'd.csv', options }).then((r) => r.created || undefined), {
    timeoutMs: 30_000,
    intervalMs: 200,
    what: 'the replica to resync and confirm changes again',
  });
  await store.destroy();
}, 90_000);

test('clients follow the master through a failover; every confirmed change survives it', async () => {
  const executorRedis = client();
  const apiRedis = client(true);
  const prefix = freshPrefix();
  const store = storeOn(executorRedis, prefix);
  const apiStore = storeOn(apiRedis, prefix);
  const first = await set.master();
  expect(await portOf(executorRedis)).toBe(first.port);

  // Jobs in every state, each change confirmed by the replica.
  const queued = await Promise.all(Array.from({ length: 10 }, () => store.create({ file: 'q.csv', options })));
  const running = (await store.create({ file: 'r.csv', options })).job;
  expect(await store.claim(running.id)).toEqual({ kind: 'claimed', attempt: 1 });
  const done = (await store.create({ file: 'd.csv', options })).job;
  await store.claim(done.id);
  expect(await store.finish(done.id, 1, { result })).toBe(true);

  // An API-style client polls all through the switch: it may be refused, it is never answered wrongly.
  const refusals: unknown[] = [];
  let polling = true;
  const poll = (async () => {
    while (polling) {
      try {
        const job = await apiStore.get(done.id);
        expect(job).toMatchObject({ status: 'succeeded', result });
      } catch (err) {
        if (!(isRedisUnavailable(err) || (err instanceof AppError && err.code === 'STORE_UNAVAILABLE'))) { throw err; }
        refusals.push(err);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();

  const { old, promoted } = await set.failover();
  expect(promoted).not.toBe(old);
  // Reads work at once on the new master, through the same clients, with everything confirmed before.
  await waitFor(async () => ((await portOf(executorRedis)) === promoted.port ? true : undefined), { what: 'the executor client on the new master' });
  await waitFor(async () => ((await apiStore.get(done.id))?.status === 'succeeded' ? true : undefined), { what: 'the API client on the new master' });
  polling = false;
  await poll;
  expect(refusals.length).toBeGreaterThan(0);
  for (const { job } of queued) { expect((await store.get(job.id))?.status).toBe('queued'); }
  expect(await store.get(running.id)).toMatchObject({ status: 'running', attempts: 1 });
  expect(await store.counts()).toEqual({ active: 11, queued: 10, running: 1 });

  // The promoted master has no replica until the old one comes back (as its replica): changes wait for it.
  await expect(store.heartbeat(running.id, 1)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
  await old.start();
  await waitFor(() => store.heartbeat(running.id, 1).then((s) => (s === 'ok' ? true : undefined)), {
    timeoutMs: 60_000,
    intervalMs: 250,
    what: 'the old master to rejoin as a replica and confirm changes',
  });
  expect(await store.finish(running.id, 1, { result })).toBe(true);
  expect(await apiStore.get(running.id)).toMatchObject({ status: 'succeeded', result });
  await store.destroy();
}, 180_000);
