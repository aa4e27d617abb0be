import request from 'supertest';
import type { Job } from '@decisum/shared';
import { startStack, type Stack } from '../../test/support/stack';
import { EventClient } from '../../test/support/events';
import { waitFor } from '../../test/support/wait';
import { jobOf, problemOf } from '../../test/support/http';

/**
 * Waiting on a job and the event stream, on the real API, Redis and RabbitMQ. No executor: the test
 * moves each job through the job store as an executor would, so it knows when each change is written.
 */

const result = { rows: 1, columns: [{ name: 'a', index: 0, sum: '1', value: 1, count: 1 }] };
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ executors: 0, env: { LEASE_MS: '60000', SSE_HEARTBEAT_MS: '300' } });
  stack.writeFile('a.csv', 'a\n1\n');
});
afterAll(() => stack?.stop());

async function submit(): Promise<Job> {
  return jobOf(await request(stack.url).post('/api/v1/jobs').send({ file: 'a.csv' }).expect(202));
}

async function claim(id: string): Promise<number> {
  const outcome = await stack.store.claim(id);
  if (outcome.kind !== 'claimed') { throw new Error(`could not claim ${id}: ${outcome.kind}`); }
  return outcome.attempt;
}

/** Resolves once the API's feed has a waiter on the job: the request is past its first read and waiting. */
const waiting = (id: string) => waitFor(() => (stack.feed.listening(id) > 0 ? true : undefined), { what: `a request waiting on ${id}` });

describe('GET /api/v1/jobs/{id}?wait=SECONDS', () => {
  it('answers within 50 ms of the result being written, with the result', async () => {
    const job = await submit();
    const attempt = await claim(job.id);
    const asked = Date.now();
    const answer = fetch(`${stack.url}/api/v1/jobs/${job.id}?wait=30`).then(async (res) => ({ at: Date.now(), status: res.status, body: (await res.json()) as Job }));
    await waiting(job.id);
    expect(await stack.store.finish(job.id, attempt, { result })).toBe(true);
    const written = Date.now();
    const { at, status, body } = await answer;
    expect(status).toBe(200);
    expect(body).toMatchObject({ id: job.id, status: 'succeeded', result });
    // An upper bound with a wide margin: the answer comes on the event, not on a tick of some poll.
    expect(at - written).toBeLessThan(50);
    expect(at - asked).toBeLessThan(30_000);
    expect(stack.feed.listening(job.id)).toBe(0);
  });

  it('answers with the job as it is when the time is up', async () => {
    const job = await submit();
    const started = Date.now();
    const res = await request(stack.url).get(`/api/v1/jobs/${job.id}?wait=1`).expect(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(jobOf(res)).toMatchObject({ id: job.id, status: 'queued' });
    // A state change that is not final does not end the wait early: the job is running at the timeout.
    await claim(job.id);
    const running = fetch(`${stack.url}/api/v1/jobs/${job.id}?wait=0.5`).then((r) => r.json() as Promise<Job>);
    expect(await running).toMatchObject({ status: 'running', attempts: 1 });
  });

  it('answers at once for a final job, and for wait=0', async () => {
    const job = await submit();
    await stack.store.cancel(job.id);
    expect(jobOf(await request(stack.url).get(`/api/v1/jobs/${job.id}?wait=60`).expect(200)).status).toBe('cancelled');
    const queued = await submit();
    expect(jobOf(await request(stack.url).get(`/api/v1/jobs/${queued.id}?wait=0`).expect(200)).status).toBe('queued');
  });

  it('refuses a wait over 60 s or not a number, and an unknown job at once', async () => {
    const job = await submit();
    for (const wait of ['61', 'abc', '-1']) {
      const res = await request(stack.url).get(`/api/v1/jobs/${job.id}?wait=${wait}`).expect(400);
      expect(problemOf(res)).toMatchObject({ code: 'VALIDATION', fields: ['wait'] });
    }
    expect(problemOf(await request(stack.url).get('/api/v1/jobs/nope?wait=30').expect(404)).code).toBe('JOB_NOT_FOUND');
    expect(problemOf(await request(stack.url).get(`/api/v1/jobs/${job.id}?wait=1&x=2`).expect(400)).code).toBe('VALIDATION');
  });

  it('stops listening when the client leaves', async () => {
    const job = await submit();
    const controller = new AbortController();
    const gone = fetch(`${stack.url}/api/v1/jobs/${job.id}?wait=30`, { signal: controller.signal }).catch(() => 'aborted');
    await waiting(job.id);
    controller.abort();
    expect(await gone).toBe('aborted');
    await waitFor(() => (stack.feed.listening(job.id) === 0 ? true : undefined), { what: 'the wait to be dropped' });
  });
});

describe('GET /api/v1/events', () => {
  const streams: EventClient[] = [];
  const open = async (options: Parameters<typeof EventClient.open>[1] = {}) => {
    const client = await EventClient.open(stack.url, options);
    streams.push(client);
    return client;
  };
  afterEach(() => {
    for (const s of streams.splice(0)) { s.close(); }
  });

  it('sends the counts at once, then each state change of a job in order, its progress, and the counts as they change', async () => {
    const events = await open();
    expect(events.status).toBe(200);
    expect(events.res.headers['content-type']).toMatch(/^text\/event-stream/);
    // Other tests' jobs are still queued here: the counts go up by this job and back down.
    const before = JSON.parse((await events.next('active')).data) as { active: number };

    const job = await submit();
    await events.next('job', (j) => (j as Job).id === job.id);
    await events.next('active', (c) => (c as { active: number }).active === before.active + 1);
    const attempt = await claim(job.id);
    await stack.store.heartbeat(job.id, attempt, { bytesRead: 5, bytesTotal: 10, rows: 1 });
    await stack.store.release(job.id, attempt, { code: 'STORAGE_UNAVAILABLE', message: 'S3 did not answer' });
    const second = await claim(job.id);
    await stack.store.finish(job.id, second, { result });

    await events.until((c) => (c.jobs(job.id).length === 5 ? true : undefined), { what: 'five state changes' });
    expect(events.jobs(job.id).map((j) => `${j.status}/${j.attempts}`)).toEqual(['queued/0', 'running/1', 'queued/1', 'running/2', 'succeeded/2']);
    // Every state change carries its own id, increasing; progress carries none (it is not replayed).
    const ids = events.jobs(job.id).map((j) => j.id!);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(5);
    const progress = events.messages.filter((m) => m.event === 'progress');
    expect(progress.map((m) => [m.id, JSON.parse(m.data) as unknown])).toEqual([[undefined, { id: job.id, progress: { bytesRead: 5, bytesTotal: 10, rows: 1 } }]]);
    const order = events.messages.filter((m) => m.event !== 'active').map((m) => (m.event === 'job' ? (JSON.parse(m.data) as Job).status : m.event));
    expect(order).toEqual(['queued', 'running', 'progress', 'queued', 'running', 'succeeded']);
    const done = events.messages.findIndex((m) => m.event === 'job' && (JSON.parse(m.data) as Job).status === 'succeeded');
    await events.next('active', (c) => (c as { active: number }).active === before.active, done);
    const final = JSON.parse(events.messages.filter((m) => m.event === 'job').at(-1)!.data) as Job;
    expect(final).toEqual(await stack.store.get(job.id));
  });

  it('with ?job= starts with the job as it is, and sends only that job\'s events', async () => {
    const other = await submit();
    const job = await submit();
    const attempt = await claim(job.id);
    const one = await open({ job: job.id });
    const [first] = await one.until((c) => (c.jobs().length > 0 ? c.jobs() : undefined));
    expect(first).toMatchObject({ status: 'running', attempts: 1 });
    await stack.store.cancel(other.id);
    await stack.store.finish(job.id, attempt, { result });
    await one.until((c) => (c.jobs().some((j) => j.status === 'succeeded') ? true : undefined));
    expect(one.jobs().map((j) => j.status)).toEqual(['running', 'succeeded']);
    expect(one.jobs(other.id)).toEqual([]);
  });

  it('resumes after Last-Event-ID with the changes missed meanwhile, and only those', async () => {
    const job = await submit();
    const first = await open({ job: job.id });
    const [queued] = await first.until((c) => (c.jobs().length > 0 ? c.jobs() : undefined));
    first.close();

    const attempt = await claim(job.id);
    await stack.store.heartbeat(job.id, attempt, { bytesRead: 1, bytesTotal: 2, rows: 1 });
    await stack.store.finish(job.id, attempt, { result });

    const again = await open({ job: job.id, lastEventId: queued.id });
    await again.until((c) => (c.jobs().length === 2 ? true : undefined), { what: 'the two missed changes' });
    expect(again.jobs().map((j) => j.status)).toEqual(['running', 'succeeded']);
    expect(again.messages.filter((m) => m.event === 'progress')).toEqual([]);
    // All jobs' stream: the same changes, from the same point.
    const all = await open({ lastEventId: queued.id });
    await all.until((c) => (c.jobs(job.id).length === 2 ? true : undefined));
    expect(all.jobs(job.id).map((j) => j.id)).toEqual(again.jobs().map((j) => j.id));
  });

  it('says reset when the history no longer reaches back to Last-Event-ID', async () => {
    const short = await startStack({ executors: 0, env: { EVENT_HISTORY: '100' } });
    try {
      short.writeFile('a.csv', 'a\n1\n');
      const first = (await short.store.create({ file: 'a.csv', options: { step: 10, offset: 0 } })).job;
      const { tip } = await short.store.snapshot(first.id);
      // Redis trims whole blocks of about 100 entries: 250 changes trim the first.
      for (let i = 0; i < 250; i++) { await short.store.create({ file: 'a.csv', options: { step: 10, offset: 0 } }); }
      const client = await EventClient.open(short.url, { lastEventId: tip });
      streams.push(client);
      await client.next('reset');
      await client.next('active');
    } finally {
      await short.stop();
    }
  });

  it('keeps an idle stream open with comment lines', async () => {
    const events = await open();
    await events.until((c) => (c.raw.split(': keep-alive\n\n').length > 2 ? true : undefined), { what: 'two heartbeats' });
  });

  it('tells that a record the queue refused is gone', async () => {
    const events = await open();
    const { job } = await stack.store.create({ file: 'a.csv', options: { step: 10, offset: 0 } });
    await stack.store.discard(job.id);
    const gone = await events.next('gone');
    expect(JSON.parse(gone.data)).toEqual({ id: job.id });
    expect(gone.id).toMatch(/^\d+-\d+$/);
  });

  it('refuses a bad query or Last-Event-ID, and an unknown job, with a problem', async () => {
    const cases = [
      [await open({ job: 'x'.repeat(101) }), 400, 'VALIDATION'],
      [await open({ lastEventId: 'yesterday' }), 400, 'VALIDATION'],
      [await open({ job: 'nope' }), 404, 'JOB_NOT_FOUND'],
      [await open({ job: 'nope', lastEventId: '1-0' }), 404, 'JOB_NOT_FOUND'],
    ] as const;
    for (const [client, status, code] of cases) {
      expect(client.status).toBe(status);
      await client.until((c) => (c.raw.endsWith('}') ? true : undefined), { what: 'the problem' });
      expect(JSON.parse(client.raw)).toMatchObject({ code });
    }
    const res = await request(stack.url).get('/api/v1/events?status=queued').expect(400);
    expect(problemOf(res).code).toBe('VALIDATION');
    expect(problemOf(res).detail).toContain('status');
  });
});
