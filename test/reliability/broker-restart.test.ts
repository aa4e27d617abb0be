import { Cluster } from '../support/processes';
import { startRabbitNode, type RabbitNode } from '../support/servers';
import { serviceUrls } from '../support/services';
import { waitFor } from '../support/wait';
import { expectSums, startSlowS3, type Expected, type SlowS3 } from './helpers';
import { jobOf, problemOf } from '../support/http';

/**
 * A private RabbitMQ node is stopped while jobs are queued and running, and started again: the API
 * and executors reconnect by themselves, the API answers 503 (never a false 202) meanwhile, and
 * every accepted job finishes once with the right sums.
 */

const MB = 1024 * 1024;

let rabbit: RabbitNode;
let s3: SlowS3;
let cluster: Cluster;

beforeAll(async () => {
  [rabbit, s3] = await Promise.all([startRabbitNode(), startSlowS3(1 * MB)]);
  const { redisUrl } = await serviceUrls();
  cluster = await Cluster.start({ redisUrl, amqpUrl: rabbit.url, apis: 1, executors: 2, env: s3.env });
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
  await Promise.all([rabbit?.destroy(), s3?.close()]);
});

test('a RabbitMQ restart with jobs queued and running loses nothing and needs no process restart', async () => {
  const accepted = new Map<string, Expected>();
  const submit = async (key: string, bytes: number) => {
    const { file, expected } = await s3.put(key, bytes);
    const res = await cluster.submit({ file });
    if (res.status === 202) { accepted.set(jobOf(res).id, expected); }
    return res;
  };

  for (let i = 0; i < 6; i++) { expect((await submit(`before-${i}.csv`, 1.5 * MB)).status).toBe(202); }
  await waitFor(
    async () => {
      const { queued, running } = await cluster.active();
      return running === 2 && queued > 0 ? true : undefined;
    },
    { timeoutMs: 20_000, what: 'two jobs running and more queued' },
  );

  await rabbit.stop('graceful');
  // While the broker is down a submission is refused: 503 with a code, and nothing is left behind.
  const refused = await waitFor(
    async () => {
      const res = await submit(`during-${Date.now()}.csv`, 1000);
      return res.status === 503 ? res : undefined;
    },
    { timeoutMs: 20_000, what: 'the API to refuse a submission' },
  );
  expect(problemOf(refused).code).toBe('BROKER_UNAVAILABLE');
  expect((await fetch(`${cluster.url}/readyz`)).status).toBe(503);
  const down = await submit('during-last.csv', 1000);
  expect(down.status).toBe(503);

  await rabbit.start();
  await waitFor(async () => ((await fetch(`${cluster.url}/readyz`)).status === 200 ? true : undefined), {
    timeoutMs: 30_000,
    what: 'the API to reconnect',
  });
  for (let i = 0; i < 2; i++) { expect((await submit(`after-${i}.csv`, 500_000)).status).toBe(202); }

  for (const [id, expected] of accepted) { expectSums(await cluster.waitForJob(id, 90_000), expected); }
  await cluster.waitForNoActive();
  expect(await cluster.queueDepth()).toBe(0);
  // Exactly the accepted jobs exist: every 503 took its record back.
  const { jobs } = await cluster.store.list({ limit: 1000 });
  expect(new Set(jobs.map((j) => j.id))).toEqual(new Set(accepted.keys()));
  // The same processes, reconnected on their own.
  for (const p of [...cluster.apis, ...cluster.executors]) {
    expect(p.alive).toBe(true);
    expect(p.logged('amqp connected').length).toBeGreaterThanOrEqual(2);
  }
  const started = cluster.executors.flatMap((p) => p.logged('job started'));
  expect(started.length).toBeGreaterThanOrEqual(accepted.size);
}, 180_000);
