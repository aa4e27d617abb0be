import { startRedisSentinelSet, type RedisSentinelSet } from '../support/clusters';
import { jobOf, problemOf } from '../support/http';
import { Cluster } from '../support/processes';
import { serviceUrls } from '../support/services';
import { waitFor } from '../support/wait';
import { expectSums, startSlowS3, type Expected, type SlowS3 } from '../reliability/helpers';

/**
 * Real API and executor processes on a private Redis master with two replicas and three sentinels
 * (REDIS_SENTINELS). The master is killed (-9) while jobs run and while a client keeps submitting:
 * each submission is answered 202 or 503, never anything else, and every 202 ends succeeded with the
 * right sums. Two replicas, so the promoted master still has one to confirm its changes (WAIT 1).
 */

const MB = 1024 * 1024;

let set: RedisSentinelSet | undefined;
let s3: SlowS3 | undefined;
let cluster: Cluster | undefined;

beforeAll(async () => {
  [set, s3] = await Promise.all([startRedisSentinelSet({ replicas: 2 }), startSlowS3(1 * MB)]);
  const { amqpUrl } = await serviceUrls();
  cluster = await Cluster.start({
    // In Sentinel mode REDIS_URL gives only the password and database: nothing listens on this port.
    redisUrl: 'redis://127.0.0.1:1',
    amqpUrl,
    apis: 1,
    executors: 2,
    env: { ...set.env, ...s3.env, REDIS_WAIT_TIMEOUT_MS: '2000' },
  });
}, 120_000);

afterAll(async () => {
  try {
    await cluster?.stop();
  } finally {
    await Promise.all([set?.destroy(), s3?.close()]);
  }
}, 60_000);

test('a master killed while jobs run: submissions meanwhile get 202 or 503, every 202 ends succeeded with the right sums', async () => {
  const c = cluster!;
  const accepted: { id: string; expected: Expected }[] = [];
  const submit = async (file: string, expected: Expected): Promise<number> => {
    const res = await c.submit({ file }).catch(() => ({ status: 0, body: undefined }));
    if (res.status === 202) { accepted.push({ id: jobOf(res).id, expected }); }
    else if (res.status === 503) { expect(problemOf(res).code).toBe('STORE_UNAVAILABLE'); }
    return res.status;
  };

  // Jobs that take seconds (1 MB/s through the proxy), some running when the master dies.
  for (let i = 0; i < 4; i++) {
    const { file, expected } = await s3!.put(`work-${i}.csv`, 2 * MB);
    expect(await submit(file, expected)).toBe(202);
  }
  await waitFor(async () => ((await c.store.counts()).running === 2 ? true : undefined), { what: 'two jobs running' });

  // A client submits small jobs all through the switch.
  const small = await s3!.put('small.csv', 20_000);
  const statuses: number[] = [];
  let submitting = true;
  const client = (async () => {
    while (submitting) {
      statuses.push(await submit(small.file, small.expected));
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  const { old, promoted } = await set!.failover();
  expect(promoted).not.toBe(old);
  // Go on until the API takes submissions again on the new master.
  const before = statuses.length;
  await waitFor(() => (statuses.slice(before).includes(202) ? true : undefined), { timeoutMs: 60_000, what: 'a 202 after the failover' });
  submitting = false;
  await client;

  expect(statuses.filter((s) => s !== 202 && s !== 503)).toEqual([]);
  // The master was gone for about a second (down-after 1000 ms): the client met the switch.
  expect(statuses).toContain(503);
  expect(statuses.filter((s) => s === 202).length).toBeGreaterThan(1);
  for (const { id, expected } of accepted) { expectSums(await c.waitForJobViaApi(id, 120_000), expected); }
  await c.waitForNoActive(60_000);
}, 240_000);
