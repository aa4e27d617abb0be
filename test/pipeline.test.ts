import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { SAMPLE, SAMPLE_SUMS } from './support/sample';
import { startStack, type Stack } from './support/stack';
import { waitFor } from './support/wait';
import { jobOf, problemOf, pageOf, activeOf } from './support/http';


describe('the pipeline: API → RabbitMQ → executors → Redis', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ executors: 2 });
    stack.writeFile('sample.csv', fs.readFileSync(SAMPLE));
  });
  afterAll(() => stack.stop());

  const api = () => request(stack.url);

  async function submit(body: object, status = 202) {
    const res = await api().post('/api/v1/jobs').send(body);
    expect(res.status).toBe(status);
    return res;
  }

  it('sums the reference sample: five columns over 168 rows, exact and as doubles', async () => {
    const res = await submit({ file: 'sample.csv' });
    expect(res.headers.location).toBe(`/api/v1/jobs/${jobOf(res).id}`);
    expect(res.body).toMatchObject({ status: 'queued', file: 'sample.csv', options: { step: 10, offset: 0 }, attempts: 0 });

    const job = await stack.waitForJob(jobOf(res).id);
    expect(job.status).toBe('succeeded');
    expect(job.result?.rows).toBe(168);
    expect(job.result?.columns.map(({ name, index, sum, count }) => ({ name, index, sum, count }))).toEqual(SAMPLE_SUMS);
    for (const c of job.result!.columns) { expect(c.value).toBe(Number(c.sum)); }
    expect(job.attempts).toBe(1);
    expect(job.progress).toEqual({ bytesRead: fs.statSync(SAMPLE).size, bytesTotal: fs.statSync(SAMPLE).size, rows: 168 });

    const got = await api().get(res.headers.location).expect(200);
    expect(got.body).toEqual(JSON.parse(JSON.stringify(job)));
    expect(await api().get('/api/v1/jobs/active').expect(200).then(activeOf)).toEqual({ active: 0, queued: 0, running: 0 });
  });

  it('accepts file: locations and the offset option (the 10th, 20th, … columns)', async () => {
    const res = await submit({ file: 'file:sample.csv', offset: 9 });
    const job = await stack.waitForJob(jobOf(res).id);
    expect(job.result?.columns.map((c) => c.name)).toEqual(['col9', 'col19', 'col29', 'col39', 'col49']);
  });

  it('counts jobs in work while many from one client run at once, and returns to 0', async () => {
    const solo = await startStack({ executors: 0 });
    try {
      solo.writeFile('sample.csv', fs.readFileSync(SAMPLE));
      const ids = await Promise.all(
        Array.from({ length: 20 }, () => request(solo.url).post('/api/v1/jobs').send({ file: 'sample.csv' }).expect(202).then((r) => jobOf(r).id)),
      );
      expect(new Set(ids).size).toBe(20);
      // No executor yet: every accepted job is queued and counted.
      expect((await request(solo.url).get('/api/v1/jobs/active')).body).toEqual({ active: 20, queued: 20, running: 0 });

      await Promise.all([solo.addExecutor(), solo.addExecutor()]);
      const seen = new Set<number>();
      await waitFor(async () => {
        const body = activeOf(await request(solo.url).get('/api/v1/jobs/active'));
        expect(body.active).toBe(body.queued + body.running);
        seen.add(body.active);
        return body.active === 0 ? true : undefined;
      }, { what: 'active to return to 0' });
      const jobs = await Promise.all(ids.map((id) => solo.waitForJob(id)));
      for (const job of jobs) {
        expect(job.status).toBe('succeeded');
        expect(job.result?.columns[0].sum).toBe(SAMPLE_SUMS[0].sum);
      }
    } finally {
      await solo.stop();
    }
  });

  it('lists jobs newest first, filtered by status, a page at a time', async () => {
    const a = jobOf(await submit({ file: 'sample.csv' })).id;
    const b = jobOf(await submit({ file: 'sample.csv' })).id;
    await stack.waitForJob(a);
    await stack.waitForJob(b);
    const first = await api().get('/api/v1/jobs?limit=1&status=succeeded').expect(200);
    expect(pageOf(first).jobs.map((j) => j.id)).toEqual([b]);
    const second = await api().get(`/api/v1/jobs?limit=1&status=succeeded&cursor=${pageOf(first).nextCursor}`).expect(200);
    expect(pageOf(second).jobs.map((j) => j.id)).toEqual([a]);
    expect(pageOf(await api().get('/api/v1/jobs?status=failed')).jobs.every((j) => j.status === 'failed')).toBe(true);
    const bad = await api().get('/api/v1/jobs?limit=0').expect(400);
    expect(problemOf(bad).code).toBe('VALIDATION');
  });

  describe('bad input gets a clear error and leaves nothing counted', () => {
    afterEach(async () => {
      await waitFor(async () => ((await stack.store.counts()).active === 0 ? true : undefined), { what: 'no active jobs' });
    });

    it.each([
      ['an absolute path', '/etc/passwd'],
      ['a path climbing out', '../outside.csv'],
      ['a path climbing out midway', 'reports/../../outside.csv'],
      ['a file: URL climbing out', 'file:../../etc/passwd'],
    ])('refuses %s with 400', async (_what, file) => {
      const res = await submit({ file }, 400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ status: 400, code: 'PATH_OUTSIDE_DATA_DIR' });
    });

    it('refuses a missing file with 404 at submission', async () => {
      const res = await submit({ file: 'nope.csv' }, 404);
      expect(problemOf(res).code).toBe('FILE_NOT_FOUND');
    });

    it('fails the job with FILE_NOT_FOUND when the file is gone by the time it runs', async () => {
      const solo = await startStack({ executors: 0 });
      try {
        solo.writeFile('soon-gone.csv', 'a,b\n1,2\n');
        const res = await request(solo.url).post('/api/v1/jobs').send({ file: 'soon-gone.csv' }).expect(202);
        fs.rmSync(path.join(solo.dataDir, 'soon-gone.csv'));
        await solo.addExecutor();
        const job = await solo.waitForJob(jobOf(res).id);
        expect(job).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'FILE_NOT_FOUND' } });
        expect((await solo.store.counts()).active).toBe(0);
      } finally {
        await solo.stop();
      }
    });

    it('answers 404 for an unknown job id', async () => {
      const res = await api().get('/api/v1/jobs/does-not-exist').expect(404);
      expect(res.body).toMatchObject({ code: 'JOB_NOT_FOUND', status: 404 });
    });

    it.each([
      [{}, 'file'],
      [{ file: '' }, 'file'],
      [{ file: 42 }, 'file'],
      [{ file: 'sample.csv', step: 0 }, 'step'],
      [{ file: 'sample.csv', offset: -1 }, 'offset'],
      [{ file: 'sample.csv', step: 'ten' }, 'step'],
      [{ file: 'sample.csv', delimiter: 'x' }, 'delimiter'],
      [{ file: 'sample.csv', header: 'maybe' }, 'header'],
      [{ file: 'sample.csv', colour: 'red' }, 'colour'],
    ])('refuses the body %j with 400 naming %s', async (body, field) => {
      const res = await submit(body, 400);
      expect(problemOf(res).code).toBe('VALIDATION');
      expect(problemOf(res).detail).toContain(field);
      expect(problemOf(res).fields).toContain(field === 'colour' ? 'body' : field);
    });

    it('refuses a body that is not JSON', async () => {
      const res = await api().post('/api/v1/jobs').set('Content-Type', 'application/json').send('{"file":').expect(400);
      expect(problemOf(res).code).toBe('VALIDATION');
    });

    it('fails a job with a non-numeric cell, naming row and column', async () => {
      stack.writeFile('bad.csv', 'id,a,b\n1,2,3\n2,x,4\n');
      const res = await submit({ file: 'bad.csv', step: 1 });
      const job = await stack.waitForJob(jobOf(res).id);
      expect(job.status).toBe('failed');
      expect(job.error).toMatchObject({ code: 'NON_NUMERIC', column: 'a' });
      expect(job.error?.row).toBe(3);
      expect(job.error?.message).toContain('x');
      expect(job.result).toBeUndefined();
    });
  });

  it('cancels a queued job and refuses to cancel a finished one', async () => {
    const solo = await startStack({ executors: 0 });
    try {
      solo.writeFile('a.csv', 'a\n1\n');
      const body = jobOf(await request(solo.url).post('/api/v1/jobs').send({ file: 'a.csv' }).expect(202));
      const cancelled = await request(solo.url).delete(`/api/v1/jobs/${body.id}`).expect(200);
      expect(jobOf(cancelled).status).toBe('cancelled');
      expect((await solo.store.counts()).active).toBe(0);
      await solo.addExecutor();
      const again = await request(solo.url).delete(`/api/v1/jobs/${body.id}`).expect(409);
      expect(problemOf(again).code).toBe('JOB_FINISHED');
      await request(solo.url).delete('/api/v1/jobs/nope').expect(404);
      // The executor takes the message and drops it without running the job.
      await waitFor(async () => ((await solo.queueDepth()) === 0 ? true : undefined), { what: 'the queue to drain' });
      expect(await solo.store.get(body.id)).toMatchObject({ status: 'cancelled', attempts: 0 });
    } finally {
      await solo.stop();
    }
  });

  it('reports health and readiness', async () => {
    expect((await api().get('/healthz').expect(200)).body).toEqual({ status: 'ok' });
    expect((await api().get('/readyz').expect(200)).body).toEqual({
      status: 'ready',
      checks: { rabbitmq: true, redis: true },
      redisEpoch: { current: expect.any(String) as string, changes: 0 },
    });
    const res = await api().get('/api/v1/nothing-here').expect(404);
    expect(problemOf(res).code).toBe('NOT_FOUND');
  });
});
