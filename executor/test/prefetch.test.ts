import request from 'supertest';
import { startStack, type Stack } from '../../test/support/stack';
import { waitFor } from '../../test/support/wait';
import { jobOf } from '../../test/support/http';
import { expectSums, startSlowS3, type Expected, type SlowS3 } from '../../test/reliability/helpers';

const MB = 1024 * 1024;

/**
 * EXECUTOR_PREFETCH above EXECUTOR_CONCURRENCY: the executor holds more messages than it sums, the
 * ones beyond its slots stay queued (unclaimed) until a slot frees, and a shutdown hands them back
 * at once instead of after its grace time.
 */
describe('an executor holding more jobs than it sums at once', () => {
  let s3: SlowS3;
  let stack: Stack;

  beforeAll(async () => {
    s3 = await startSlowS3(1 * MB);
    stack = await startStack({ executors: 1, env: { ...s3.env, EXECUTOR_CONCURRENCY: '1', EXECUTOR_PREFETCH: '4' } });
  });
  afterAll(async () => {
    await stack?.stop();
    await s3?.close();
  });

  it('sums one at a time, keeps the others queued while it holds them, and finishes all', async () => {
    const jobs: { id: string; expected: Expected }[] = [];
    for (let i = 0; i < 3; i++) {
      const { file, expected } = await s3.put(`held-${i}.csv`, 1 * MB);
      jobs.push({ id: jobOf(await request(stack.url).post('/api/v1/jobs').send({ file }).expect(202)).id, expected });
    }
    // All three delivered to the one executor (none ready in the queue), one of them running.
    await waitFor(async () => ((await stack.queueDepth()) === 0 && (await stack.store.counts()).running === 1 ? true : undefined), {
      what: 'three messages held, one job running',
    });
    let most = 0;
    const watching = setInterval(() => void stack.store.counts().then((c) => (most = Math.max(most, c.running))), 50);
    try {
      expect(await stack.store.counts()).toMatchObject({ queued: 2, running: 1 });
      for (const { id, expected } of jobs) { expectSums(await stack.waitForJob(id, 30_000), expected); }
    } finally {
      clearInterval(watching);
    }
    expect(most).toBe(1);
  });

  it('hands the jobs waiting for a slot back at once when it stops', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { file } = await s3.put(`stop-${i}.csv`, 3 * MB);
      ids.push(jobOf(await request(stack.url).post('/api/v1/jobs').send({ file }).expect(202)).id);
    }
    await waitFor(async () => ((await stack.queueDepth()) === 0 && (await stack.store.counts()).running === 1 ? true : undefined), {
      what: 'three messages held, one job running',
    });
    // A grace longer than the test: only the running job may take it.
    const stopped = stack.executors[0].stop(60_000);
    await waitFor(async () => ((await stack.queueDepth()) === 2 ? true : undefined), { timeoutMs: 2_000, what: 'the two waiting jobs back in the queue' });
    expect((await stack.store.counts()).queued).toBe(2);
    await stopped;
    // The running job finished within the grace; another executor runs the two handed back.
    await stack.addExecutor();
    for (const id of ids) { expect((await stack.waitForJob(id, 30_000)).status).toBe('succeeded'); }
  });
});
