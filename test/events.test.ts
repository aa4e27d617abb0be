import type { Job } from '@decisum/shared';
import { Cluster } from './support/processes';
import { EventClient } from './support/events';
import { serviceUrls } from './support/services';
import { SAMPLE_EXPECTED, expectSums, sampleCsv } from './reliability/helpers';
import { jobOf } from './support/http';

/**
 * Two API processes and an executor, as a scaled deployment runs them: each API reads the job
 * streams on its own connection, so a client on either sees every change, whichever process made it.
 */

let cluster: Cluster;
const streams: EventClient[] = [];
const open = async (api: number, options: Parameters<typeof EventClient.open>[1] = {}) => {
  const client = await EventClient.open(cluster.apis[api].url, options);
  streams.push(client);
  expect(client.status).toBe(200);
  return client;
};

beforeAll(async () => {
  const { redisUrl, amqpUrl } = await serviceUrls();
  cluster = await Cluster.start({ redisUrl, amqpUrl, apis: 2, executors: 1 });
  cluster.writeFile('sample.csv', sampleCsv());
}, 90_000);
afterEach(() => {
  for (const s of streams.splice(0)) { s.close(); }
});
afterAll(() => cluster?.stop());

test('both APIs\' streams see every state change in order, and ?wait on the other API answers with the result', async () => {
  const [a, b] = await Promise.all([open(0), open(1)]);
  await Promise.all([a.next('active'), b.next('active')]);

  const res = await cluster.submit({ file: 'sample.csv' }, {}, cluster.apis[0].url);
  expect(res.status).toBe(202);
  const id = jobOf(res).id;
  const waited = fetch(`${cluster.apis[1].url}/api/v1/jobs/${id}?wait=30`).then((r) => r.json() as Promise<Job>);

  const done = (c: EventClient) => c.until((x) => (x.jobs(id).some((j) => j.status === 'succeeded') ? true : undefined), { what: `job ${id} to succeed` });
  await Promise.all([done(a), done(b)]);
  expect(a.jobs(id).map((j) => j.status)).toEqual(['queued', 'running', 'succeeded']);
  // The same changes under the same ids: one history, whichever API a client reads it from.
  expect(b.jobs(id)).toEqual(a.jobs(id));
  expectSums(await waited, SAMPLE_EXPECTED);
  // The counts came back to what they were, on both.
  await Promise.all([a.next('active', (c) => (c as { active: number }).active === 0), b.next('active', (c) => (c as { active: number }).active === 0)]);
});

test('a client that reconnects to the other API with Last-Event-ID gets the changes it missed', async () => {
  const first = await open(0);
  const res = await cluster.submit({ file: 'sample.csv' });
  const id = jobOf(res).id;
  const [queued] = await first.until((c) => (c.jobs(id).length > 0 ? c.jobs(id) : undefined));
  first.close();
  await cluster.waitForJob(id);

  const again = await open(1, { lastEventId: queued.id });
  await again.until((c) => (c.jobs(id).length === 2 ? true : undefined), { what: 'the two missed changes' });
  expect(again.jobs(id).map((j) => j.status)).toEqual(['running', 'succeeded']);
  expect(again.messages.some((m) => m.event === 'reset')).toBe(false);
});
