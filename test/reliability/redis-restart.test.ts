import { randomUUID } from 'node:crypto';
import { Cluster } from '../support/processes';
import { startRedisServer, type PrivateServer } from '../support/servers';
import { serviceUrls } from '../support/services';
import { waitFor } from '../support/wait';
import { expectSums, startSlowS3, type Expected, type SlowS3 } from './helpers';
import { jobOf, problemOf } from '../support/http';

/**
 * A private Redis (AOF, fsync always, as production runs it) is killed with -9 during a run and
 * started again. Clients retry 503s with their Idempotency-Key: every key makes exactly one job,
 * every job finishes once with the right sums, the processes recover without a restart.
 */

const MB = 1024 * 1024;
const CLIENTS = 6;

let redis: PrivateServer;
let s3: SlowS3;
let cluster: Cluster;

beforeAll(async () => {
  [redis, s3] = await Promise.all([startRedisServer({ appendOnly: true }), startSlowS3(2 * MB)]);
  const { amqpUrl } = await serviceUrls();
  cluster = await Cluster.start({ redisUrl: redis.url, amqpUrl, apis: 1, executors: 2, env: s3.env });
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
  await Promise.all([redis?.destroy(), s3?.close()]);
});

test('a Redis crash and restart during a run: nothing lost, nothing counted twice, no wrong sum', async () => {
  const byKey = new Map<string, { id: string; expected: Expected }>();
  const refusals: { status: number; code?: string }[] = [];

  /** A well-behaved client: the same Idempotency-Key until a 202, whatever happens meanwhile. */
  const submitUntilAccepted = async (name: string) => {
    const key = randomUUID();
    const { file, expected } = await s3.put(`${name}.csv`, 1 * MB);
    const res = await waitFor(
      async () => {
        const r = await cluster.submit({ file }, { 'Idempotency-Key': key }).catch(() => ({ status: 0, body: {} }));
        if (r.status === 202) { return r; }
        refusals.push({ status: r.status, code: problemOf(r).code });
        return undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: `a 202 for key ${key}` },
    );
    byKey.set(key, { id: jobOf(res).id, expected });
  };

  await Promise.all(Array.from({ length: CLIENTS }, (_, c) => submitUntilAccepted(`before-${c}`)));
  await waitFor(async () => ((await cluster.store.counts()).running > 0 ? true : undefined), { what: 'a job running' });
  await redis.stop('crash');
  // Submissions made while Redis is down: each is refused at least once, then retried with its key.
  const during = Promise.all(Array.from({ length: CLIENTS }, (_, c) => submitUntilAccepted(`during-${c}`)));
  await waitFor(() => (refusals.length >= CLIENTS ? true : undefined), { timeoutMs: 20_000, what: 'every client to be refused' });
  await redis.start();
  await during;

  expect(refusals.every((r) => r.status === 503 && r.code === 'STORE_UNAVAILABLE')).toBe(true);
  expect(byKey.size).toBe(2 * CLIENTS);
  const ids = [...byKey.values()].map((v) => v.id);
  expect(new Set(ids).size).toBe(ids.length);
  for (const { id, expected } of byKey.values()) { expectSums(await cluster.waitForJob(id, 90_000), expected); }
  await cluster.waitForNoActive();
  expect(await cluster.queueDepth()).toBe(0);
  // One record per key: a retried submission never made a second job.
  const { jobs } = await cluster.store.list({ limit: 1000 });
  expect(jobs.map((j) => j.id).sort()).toEqual([...ids].sort());
  // Each job's result was written exactly once across all executors.
  const successes = () => cluster.executors.flatMap((p) => p.logged('job succeeded').filter((l) => l.written === true).map((l) => l.jobId));
  // Log lines follow the Redis writes: wait for them all rather than race the last one.
  await waitFor(() => (successes().length >= ids.length ? true : undefined), { what: 'every success to be logged' });
  expect(successes().sort()).toEqual([...ids].sort());
  for (const p of [...cluster.apis, ...cluster.executors]) { expect(p.alive).toBe(true); }
}, 180_000);
