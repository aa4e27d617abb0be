import request from 'supertest';
import { parseLocation } from '@decisum/shared';
import { startStack, type Stack } from '../../test/support/stack';
import { waitFor } from '../../test/support/wait';
import { jobOf } from '../../test/support/http';
import { expectSums, startSlowS3, type SlowS3 } from '../../test/reliability/helpers';

const MB = 1024 * 1024;

/** A running job shows how far it has to go from its first bytes on, not from the first heartbeat. */
describe('progress of a running job', () => {
  let s3: SlowS3;
  let stack: Stack;

  beforeAll(async () => {
    s3 = await startSlowS3(1 * MB);
    // No heartbeat comes within the test: the size can only be written when it is learnt.
    stack = await startStack({ executors: 1, env: { ...s3.env, HEARTBEAT_MS: '600000', LEASE_MS: '1200000' } });
  });
  afterAll(async () => {
    await stack?.stop();
    await s3?.close();
  });

  it('has bytesTotal set while the file is still being read', async () => {
    const { file, expected } = await s3.put('progress.csv', 3 * MB);
    const id = jobOf(await request(stack.url).post('/api/v1/jobs').send({ file }).expect(202)).id;
    const running = await waitFor(
      async () => {
        const job = await stack.store.get(id);
        return job?.status === 'running' && job.progress.bytesTotal > 0 ? job : undefined;
      },
      { timeoutMs: 20_000, what: 'the running job to show its size' },
    );
    expect(running.progress.bytesTotal).toBe((await stack.storage.stat(parseLocation(file))).size);
    expect(running.progress.bytesRead).toBeLessThan(running.progress.bytesTotal);
    expectSums(await stack.waitForJob(id), expected);
  });
});
