import { Cluster, type ServiceProcess } from '../support/processes';
import { serviceUrls } from '../support/services';
import { waitFor } from '../support/wait';
import { SAMPLE_EXPECTED, expectSums, sampleCsv, startSlowS3, type SlowS3 } from './helpers';
import { jobOf } from '../support/http';

/**
 * Executors die for real (kill -9, SIGTERM) while they hold a job: the job still finishes once,
 * with the right sums, and nothing stays counted as active. Shared Redis and RabbitMQ, own prefix.
 */

const MB = 1024 * 1024;
// 3 MB at 1 MB/s: every attempt reads for about three seconds, whatever the CPU.
const SLOW_BYTES = 3 * MB;
const RATE = 1 * MB;

let s3: SlowS3;
let cluster: Cluster;

beforeAll(async () => {
  s3 = await startSlowS3(RATE);
  const { redisUrl, amqpUrl } = await serviceUrls();
  cluster = await Cluster.start({ redisUrl, amqpUrl, apis: 1, env: s3.env });
  cluster.writeFile('sample.csv', sampleCsv());
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
  await s3?.close();
});

/** The executor that logged starting this job's given attempt. */
async function runnerOf(id: string, attempt: number, among: ServiceProcess[]): Promise<ServiceProcess> {
  return waitFor(() => among.find((p) => p.logged('job started', id).some((l) => l.attempt === attempt)), {
    timeoutMs: 20_000,
    what: `an executor to start attempt ${attempt} of ${id}`,
  });
}

/** The job's record once it is running and has read some bytes: the executor is mid-job. */
async function midJob(id: string) {
  return waitFor(
    async () => {
      const job = await cluster.store.get(id);
      return job?.status === 'running' && job.progress.bytesRead > 0 ? job : undefined;
    },
    { timeoutMs: 20_000, what: `job ${id} to be part-way through` },
  );
}

/** A job on a new S3 file of `bytes`, once one of `among` (its runner) is part-way through it. */
async function jobUnderWay(name: string, bytes: number, among: ServiceProcess[]) {
  const { file, expected } = await s3.put(name, bytes);
  const res = await cluster.submit({ file });
  expect(res.status).toBe(202);
  const id = jobOf(res).id;
  const runner = await runnerOf(id, 1, among);
  const midway = await midJob(id);
  return { id, expected, runner, midway };
}

afterEach(async () => {
  await cluster.waitForNoActive();
  expect(await cluster.queueDepth()).toBe(0);
  // Executors a test left behind would take the next test's job.
  await Promise.all(cluster.executors.splice(0).map((p) => p.kill()));
});

test('kill -9 mid-job: another executor finishes it with the right sums on attempt 2', async () => {
  const [a, b] = await Promise.all([cluster.addExecutor(), cluster.addExecutor()]);
  const { id, expected, runner: first, midway } = await jobUnderWay('kill9.csv', SLOW_BYTES, [a, b]);
  expect(midway.progress.bytesRead).toBeLessThan(midway.progress.bytesTotal);
  await first.kill();

  const survivor = first === a ? b : a;
  const job = await cluster.waitForJob(id);
  expectSums(job, expected);
  expect(job.attempts).toBe(2);
  // The log line follows the Redis write: wait for it rather than race it.
  await survivor.waitForLog((l) => l.jobId === id && l.msg === 'job succeeded', { what: 'the survivor to report the job' });
  expect(first.logged('job succeeded', id)).toHaveLength(0);
});

test('kill -9 after the result is written, before the ack: the redelivery is acked without recomputing', async () => {
  const crashing = await cluster.addExecutor({}, 'executor-crash-after-write');
  const res = await cluster.submit({ file: 'sample.csv' });
  expect(res.status).toBe(202);
  const id = jobOf(res).id;

  const { signal } = await crashing.exited;
  expect(signal).toBe('SIGKILL');
  const written = await cluster.store.get(id);
  expectSums(written!, SAMPLE_EXPECTED);
  expect(written!.attempts).toBe(1);
  // The broker still holds the unacked message and gives it back once the dead connection is noticed.
  const second = await cluster.addExecutor();
  await second.waitForLog((l) => l.jobId === id && l.msg === 'redelivered job already finished; acking without work', {
    what: 'the redelivered message to be acked as finished',
  });
  expect(second.logged('job started', id)).toHaveLength(0);
  expect(await cluster.store.get(id)).toEqual(written);
});

test('SIGTERM past the grace period: the job is handed back, another executor finishes it, the process exits 0', async () => {
  const leaving = await cluster.addExecutor({ SHUTDOWN_GRACE_MS: '300' });
  const { id, expected } = await jobUnderWay('handback.csv', 2 * SLOW_BYTES, [leaving]);

  expect(await leaving.terminate()).toBe(0);
  expect(leaving.logged('job succeeded', id)).toHaveLength(0);
  // Handed back in the record: queued again, not running, not failed; the message waits in the queue.
  expect(await cluster.store.get(id)).toMatchObject({ status: 'queued', attempts: 1 });
  expect((await cluster.active()).active).toBe(1);
  // Started only now, so the first attempt was certainly the leaving executor's.
  const staying = await cluster.addExecutor();
  const job = await cluster.waitForJob(id);
  expectSums(job, expected);
  expect(job.attempts).toBe(2);
  await staying.waitForLog((l) => l.jobId === id && l.msg === 'job succeeded', { what: 'the other executor to report the job' });
});

test('SIGTERM within the grace period: the job finishes where it runs, then the process exits 0', async () => {
  const leaving = await cluster.addExecutor({ SHUTDOWN_GRACE_MS: '30000' });
  const { id, expected } = await jobUnderWay('grace.csv', 2 * MB, [leaving]);

  expect(await leaving.terminate()).toBe(0);
  const job = await cluster.store.get(id);
  expectSums(job!, expected);
  expect(job!.attempts).toBe(1);
  expect(leaving.logged('job succeeded', id)).toHaveLength(1);
});
