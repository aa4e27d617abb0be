import { Cluster } from '../support/processes';
import { serviceUrls } from '../support/services';
import { SAMPLE_EXPECTED, expectSums, sampleCsv } from './helpers';
import { jobOf } from '../support/http';

/** One Idempotency-Key sent 20 times at once, to two API processes: one job, run once. */

let cluster: Cluster;

beforeAll(async () => {
  const { redisUrl, amqpUrl } = await serviceUrls();
  cluster = await Cluster.start({ redisUrl, amqpUrl, apis: 2, executors: 1 });
  cluster.writeFile('sample.csv', sampleCsv());
}, 90_000);

afterAll(() => cluster?.stop());

test('20 concurrent submissions with one Idempotency-Key make one job', async () => {
  const key = 'order-42';
  const responses = await Promise.all(
    Array.from({ length: 20 }, (_, i) => cluster.submit({ file: 'sample.csv' }, { 'Idempotency-Key': key }, cluster.apis[i % 2].url)),
  );
  expect(responses.map((r) => r.status)).toEqual(Array(20).fill(202));
  const ids = new Set(responses.map((r) => jobOf(r).id));
  expect(ids.size).toBe(1);
  const [id] = ids;

  const job = await cluster.waitForJob(id);
  expectSums(job, SAMPLE_EXPECTED);
  expect(job.attempts).toBe(1);
  await cluster.waitForNoActive();
  expect(await cluster.queueDepth()).toBe(0);
  expect((await cluster.store.list({ limit: 100 })).jobs.map((j) => j.id)).toEqual([id]);
  expect(cluster.apis.flatMap((p) => p.logged('job accepted'))).toHaveLength(1);
  expect(cluster.executors[0].logged('job started')).toHaveLength(1);

  // The key after the job finished still answers with it; reused for another request it is refused.
  const again = await cluster.submit({ file: 'sample.csv' }, { 'Idempotency-Key': key });
  expect(again).toMatchObject({ status: 202, body: { id, status: 'succeeded' } });
  const other = await cluster.submit({ file: 'sample.csv', offset: 9 }, { 'Idempotency-Key': key });
  expect(other).toMatchObject({ status: 422, body: { code: 'IDEMPOTENCY_KEY_REUSED' } });
});
