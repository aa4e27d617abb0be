import fs from 'node:fs';
import { SAMPLE, SAMPLE_SUMS } from '../../test/support/sample';
import { startStack, type Stack } from '../../test/support/stack';
import { waitFor } from '../../test/support/wait';

/** The outbox: a job recorded in Redis but never published (the API died between the two) is published by the sweeper and runs. */
describe('the outbox sweeper', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ executors: 1 });
    stack.writeFile('sample.csv', fs.readFileSync(SAMPLE));
  });
  afterAll(() => stack?.stop());

  it('publishes a recorded job once its grace has passed; the job runs and leaves the outbox', async () => {
    const { job } = await stack.store.create({ file: 'sample.csv', options: { step: 10, offset: 0 } });
    expect(await stack.store.unpublished(0)).toEqual([job.id]);

    const done = await stack.waitForJob(job.id);
    expect(done.status).toBe('succeeded');
    expect(done.attempts).toBe(1);
    expect(done.result?.columns.map((c) => c.sum)).toEqual(SAMPLE_SUMS.map((c) => c.sum));
    await waitFor(async () => ((await stack.store.unpublished(0)).length === 0 ? true : undefined), { what: 'the outbox to empty' });
    expect(await stack.queueDepth()).toBe(0);
  });
});
