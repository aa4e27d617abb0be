import { Cluster } from '../support/processes';
import { freePort } from '../support/servers';
import { serviceUrls } from '../support/services';
import { waitFor } from '../support/wait';
import { jobOf } from '../support/http';

/**
 * What can never succeed must end: a message that is not a job, and a file whose store always fails
 * transiently, are dead-lettered after the delivery limit and the job is marked failed with the
 * reason. No endless redelivery loop.
 */

const MAX_ATTEMPTS = 3;
let cluster: Cluster;

beforeAll(async () => {
  const { redisUrl, amqpUrl } = await serviceUrls();
  // Nothing listens on this port: every S3 request is refused, a transient failure each time.
  const closed = `http://127.0.0.1:${await freePort()}`;
  cluster = await Cluster.start({
    redisUrl,
    amqpUrl,
    apis: 1,
    executors: 2,
    env: {
      MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      S3_ENDPOINT: closed,
      S3_FORCE_PATH_STYLE: 'true',
      S3_BUCKETS: '*',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      READ_RETRIES: '1',
      READ_BACKOFF_MS: '10',
    },
  });
}, 90_000);

afterAll(() => cluster?.stop());

afterEach(async () => {
  await cluster.waitForNoActive();
  expect(await cluster.queueDepth()).toBe(0);
  expect(await cluster.queueDepth(cluster.topology.dead)).toBe(0);
});

const all = (msg: string, jobId?: string) => cluster.executors.flatMap((p) => p.logged(msg, jobId));

test('a poison message is rejected once, dead-lettered and dropped', async () => {
  await cluster.publishRaw(Buffer.from('{"this is": not a job'));
  await waitFor(() => (all('dropped a dead-lettered poison message').length === 1 ? true : undefined), {
    timeoutMs: 20_000,
    what: 'the poison message to reach the dead-letter queue',
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n${cluster.logs()}`);
  });
  expect(all('poison message: not a job; dead-lettering it')).toHaveLength(1);
});

test('a file that always fails transiently is tried MAX_ATTEMPTS times, dead-lettered, and failed with the reason', async () => {
  const res = await cluster.submit({ file: 's3://nowhere/always-down.csv' });
  expect(res.status).toBe(202);
  const id = jobOf(res).id;

  const job = await cluster.waitForJob(id, 60_000);
  expect(job.status).toBe('failed');
  expect(job.attempts).toBe(MAX_ATTEMPTS);
  // The reason is the last transient error, not a bare "delivered too often".
  const retried = all('job failed transiently; it will be retried', id);
  expect(retried).toHaveLength(MAX_ATTEMPTS);
  expect(job.error).toMatchObject({ code: 'STORAGE_UNAVAILABLE', message: expect.stringContaining('ECONNREFUSED') });
  await waitFor(() => (all('job dead-lettered', id).length === 1 ? true : undefined), { what: 'the dead-letter consumer to settle it' });
  expect(all('job started', id)).toHaveLength(MAX_ATTEMPTS);
});
