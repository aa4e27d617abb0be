import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Cluster } from '../support/processes';
import { startRedisServer, type PrivateServer } from '../support/servers';
import { serviceUrls } from '../support/services';
import { waitFor } from '../support/wait';
import { jobOf } from '../support/http';
import { expectSums, startSlowS3, type Expected, type SlowS3 } from './helpers';

/**
 * A private Redis restarted (kill -9) while jobs are finished, running and queued, through real API
 * and executor processes. Without persistence Redis comes back empty: every accepted job still ends
 * succeeded with the right sums (queued and running ones recorded again from their queue messages,
 * finished ones read back from the results archive), none runs twice, `active` returns to 0, and
 * the processes say Redis lost its data. With an AOF (fsync always) nothing needs recovering.
 */

const MB = 1024 * 1024;
const RESTORED = 'job restored from its queue message: redis had lost it';
const LOST = /^redis lost its data/;

describe.each([
  { persistence: 'none', appendOnly: false },
  { persistence: 'AOF', appendOnly: true },
])('a Redis with persistence $persistence restarted during a run', ({ appendOnly }) => {
  let redis: PrivateServer | undefined;
  let s3: SlowS3 | undefined;
  let cluster: Cluster | undefined;

  beforeAll(async () => {
    [redis, s3] = await Promise.all([startRedisServer({ appendOnly }), startSlowS3(1 * MB)]);
    const { amqpUrl } = await serviceUrls();
    cluster = await Cluster.start({ redisUrl: redis.url, amqpUrl, apis: 1, executors: 2, env: s3.env });
  }, 90_000);

  afterAll(async () => {
    try {
      await cluster?.stop();
    } finally {
      await Promise.all([redis?.destroy(), s3?.close()]);
    }
  }, 60_000);

  test('every accepted job ends succeeded once with the right sums; active returns to 0', async () => {
    const c = cluster!;
    const submit = async (name: string, bytes: number) => {
      const { file, expected } = await s3!.put(`${name}.csv`, bytes);
      const res = await c.submit({ file }, { 'Idempotency-Key': randomUUID() });
      expect(res.status).toBe(202);
      return { id: jobOf(res).id, expected };
    };
    const finished = [await submit('done-0', 100_000), await submit('done-1', 100_000)];
    for (const { id } of finished) { await c.waitForJob(id); }
    const archived = (id: string) => path.join(c.dataDir, '.decisum', 'results', c.prefix, `${id}.json`);
    await waitFor(() => (finished.every(({ id }) => fs.existsSync(archived(id))) ? true : undefined), { what: 'the finished jobs archived' });

    const inWork: { id: string; expected: Expected }[] = [];
    for (let i = 0; i < 6; i++) { inWork.push(await submit(`work-${i}`, 2 * MB)); }
    await waitFor(async () => ((await c.store.counts()).running === 2 ? true : undefined), { what: 'two jobs running' });

    await redis!.restart('crash');

    for (const { id, expected } of [...finished, ...inWork]) { expectSums(await c.waitForJobViaApi(id, 120_000), expected); }
    await c.waitForNoActive(60_000);
    // A finished job ran once, before the restart: no executor started it again.
    for (const { id } of finished) { expect(c.loggedEverywhere('job started').filter((l) => l.jobId === id)).toHaveLength(1); }
    const restored = new Set(c.loggedEverywhere(RESTORED).map((l) => l.jobId));
    if (appendOnly) {
      expect(restored.size).toBe(0);
      expect(c.loggedEverywhere(LOST)).toHaveLength(0);
      for (const { id } of finished) { expect((await c.store.get(id))?.status).toBe('succeeded'); }
    } else {
      // Every job in work was recorded again (a running one by the executor that kept running it).
      expect([...restored].sort()).toEqual(inWork.map((j) => j.id).sort());
      // The finished ones came back from the archive only: Redis has no record of them.
      for (const { id } of finished) { expect(await c.store.get(id)).toBeUndefined(); }
      const lost = c.loggedEverywhere(LOST);
      expect(lost.some((l) => l.process.startsWith('api') && l.level === 50)).toBe(true);
      const ready = (await (await fetch(`${c.url}/readyz`)).json()) as { redisEpoch?: { changes: number } };
      expect(ready.redisEpoch?.changes).toBeGreaterThanOrEqual(1);
    }
    // Each job's result was written to Redis by exactly one attempt.
    const written = c.loggedEverywhere('job succeeded').filter((l) => l.written === true).map((l) => l.jobId);
    expect(written.sort()).toEqual([...finished, ...inWork].map((j) => j.id).sort());
  }, 240_000);
});
