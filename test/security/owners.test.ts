import request from 'supertest';
import { problemOf, jobOf } from '../support/http';
import { decodeMessage, encodeMessage, type Job } from '@decisum/shared';
import { EventClient } from '../support/events';
import { startStack, type Stack } from '../support/stack';
import { apiTokens, bearer, testToken, type TestToken } from './helpers';

const alice = testToken('alice', ['jobs:write', 'jobs:read']);
const bob = testToken('bob', ['jobs:write', 'jobs:read']);
const admin = testToken('ops', ['admin']);

/** Owners: a job is its submitter's; another owner neither sees, waits on, hears of nor cancels it (404, as if absent); admin does. */
describe('job owners', () => {
  let stack: Stack;
  let alicesJob: Job;
  beforeAll(async () => {
    // No executor: jobs stay queued, so a cancel would take effect.
    stack = await startStack({ executors: 0, env: { API_TOKENS: apiTokens(alice, bob, admin) } });
    stack.writeFile('sample.csv', 'a,b\n1,2\n');
  });
  afterAll(() => stack?.stop());

  const submit = async (who: TestToken, key?: string) => {
    const req = request(stack.url).post('/api/v1/jobs').set(bearer(who));
    if (key) { void req.set('Idempotency-Key', key); }
    return (await req.send({ file: 'sample.csv' }).expect(202)).body as Job;
  };

  it('records the submitter as the owner, in the job, the Redis record and the queue message', async () => {
    alicesJob = await submit(alice);
    expect(alicesJob.owner).toBe('alice');
    expect((await stack.store.get(alicesJob.id))?.owner).toBe('alice');
    expect(await stack.redis.hget(`${stack.config.prefix}:job:${alicesJob.id}`, 'owner')).toBe('alice');
    expect(decodeMessage(encodeMessage((await stack.store.copy(alicesJob.id))!.message))?.owner).toBe('alice');
  });

  it('answers another owner 404 JOB_NOT_FOUND for get, wait and cancel, and leaves the job as it was', async () => {
    const get = await request(stack.url).get(`/api/v1/jobs/${alicesJob.id}`).set(bearer(bob)).expect(404);
    expect(problemOf(get).code).toBe('JOB_NOT_FOUND');
    const wait = await request(stack.url).get(`/api/v1/jobs/${alicesJob.id}?wait=1`).set(bearer(bob)).expect(404);
    expect(problemOf(wait).code).toBe('JOB_NOT_FOUND');
    const cancel = await request(stack.url).delete(`/api/v1/jobs/${alicesJob.id}`).set(bearer(bob)).expect(404);
    expect(problemOf(cancel).code).toBe('JOB_NOT_FOUND');
    expect((await stack.store.get(alicesJob.id))?.status).toBe('queued');
    // The same answer as for an id that never was: ids cannot be probed.
    expect(problemOf(await request(stack.url).get('/api/v1/jobs/never-was').set(bearer(bob)).expect(404)).code).toBe('JOB_NOT_FOUND');
  });

  it('lists only the caller’s jobs; admin lists everyone’s', async () => {
    const bobsJob = await submit(bob);
    const ids = async (who: TestToken) => ((await request(stack.url).get('/api/v1/jobs').set(bearer(who)).expect(200)).body as { jobs: Job[] }).jobs.map((j) => j.id);
    expect(await ids(bob)).toEqual([bobsJob.id]);
    expect(await ids(alice)).toEqual([alicesJob.id]);
    expect((await ids(admin)).sort()).toEqual([alicesJob.id, bobsJob.id].sort());
  });

  it('keeps Idempotency-Keys per owner: the same key gives each owner their own job', async () => {
    const a = await submit(alice, 'shared-key');
    const b = await submit(bob, 'shared-key');
    expect(b.id).not.toBe(a.id);
    expect(b.owner).toBe('bob');
    expect((await submit(alice, 'shared-key')).id).toBe(a.id);
  });

  it('streams to an owner only its own jobs’ events, and refuses ?job= on another’s', async () => {
    const bobs = await EventClient.open(stack.url, { token: bob.token });
    const alices = await EventClient.open(stack.url, { token: alice.token });
    try {
      expect(bobs.status).toBe(200);
      await bobs.next('active');
      const job = await submit(alice);
      await alices.until((c) => (c.jobs(job.id).length > 0 ? true : undefined), { what: 'alice’s job event' });
      // A later job of bob's own arrives on his stream: by then alice's would have too.
      const own = await submit(bob);
      await bobs.until((c) => (c.jobs(own.id).length > 0 ? true : undefined), { what: 'bob’s own job event' });
      expect(bobs.jobs(job.id)).toEqual([]);
      expect(bobs.raw).not.toContain(job.id);
      const probe = await EventClient.open(stack.url, { token: bob.token, job: job.id });
      expect(probe.status).toBe(404);
      probe.close();
    } finally {
      bobs.close();
      alices.close();
    }
  });

  it('lets admin see and cancel another owner’s job', async () => {
    await request(stack.url).get(`/api/v1/jobs/${alicesJob.id}`).set(bearer(admin)).expect(200);
    const res = await request(stack.url).delete(`/api/v1/jobs/${alicesJob.id}`).set(bearer(admin)).expect(200);
    expect(jobOf(res).status).toBe('cancelled');
  });
});
