import fs from 'node:fs';
import request from 'supertest';
import { SAMPLE } from '../../test/support/sample';
import { startStack, type Stack } from '../../test/support/stack';
import { sample } from '../../test/support/prometheus';
import { activeOf, jobOf } from '../../test/support/http';
import { waitFor } from '../../test/support/wait';

describe('GET /metrics on the API’s metrics port', () => {
  let stack: Stack;
  const scrape = async () => {
    const res = await request(stack.metricsUrl).get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return res.text;
  };

  // No executor: a submitted job stays queued, so the gauges have something to show.
  beforeAll(async () => {
    stack = await startStack({ executors: 0 });
    stack.writeFile('sample.csv', fs.readFileSync(SAMPLE));
  });
  afterAll(() => stack?.stop());

  it('answers Prometheus text with the job series and process metrics', async () => {
    const text = await scrape();
    expect(text).toContain('# TYPE decisum_jobs_submitted_total counter');
    expect(text).toContain('# TYPE decisum_jobs_queued gauge');
    expect(text).toContain('# TYPE decisum_jobs_running gauge');
    expect(text).toContain('# TYPE decisum_jobs_active gauge');
    expect(text).toContain('# TYPE decisum_jobs_lease_expired gauge');
    expect(sample(text, 'decisum_jobs_submitted_total')).toBe(0);
    expect(sample(text, 'decisum_jobs_active')).toBe(0);
    expect(sample(text, 'decisum_jobs_lease_expired')).toBe(0);
    expect(sample(text, 'decisum_jobs_queued')).toBe(0);
    expect(sample(text, 'decisum_jobs_running')).toBe(0);
    // prom-client's standard names, as stock Node.js dashboards expect them.
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(sample(text, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(text).toMatch(/^nodejs_heap_space_size_used_bytes\{space="old"\} \d+/m);
  });

  it('counts an accepted submission once, and the queued gauge reads it from Redis', async () => {
    const before = sample(await scrape(), 'decisum_jobs_submitted_total')!;
    const first = await request(stack.url).post('/api/v1/jobs').set('Idempotency-Key', 'metrics-1').send({ file: 'sample.csv' }).expect(202);
    // A replay and a refusal are not submissions.
    const replay = await request(stack.url).post('/api/v1/jobs').set('Idempotency-Key', 'metrics-1').send({ file: 'sample.csv' }).expect(202);
    expect(jobOf(replay).id).toBe(jobOf(first).id);
    await request(stack.url).post('/api/v1/jobs').send({ file: 'missing.csv' }).expect(404);
    await request(stack.url).post('/api/v1/jobs').send({ file: 'sample.csv', step: 0 }).expect(400);

    const text = await scrape();
    expect(sample(text, 'decisum_jobs_submitted_total')).toBe(before + 1);
    expect(sample(text, 'decisum_jobs_queued')).toBe(1);
    expect(sample(text, 'decisum_jobs_running')).toBe(0);
    expect(sample(text, 'decisum_jobs_active')).toBe(activeOf(await request(stack.url).get('/api/v1/jobs/active').expect(200)).active);
    expect(sample(text, 'decisum_jobs_active')).toBe(1);

    await request(stack.url).delete(`/api/v1/jobs/${jobOf(first).id}`).expect(200);
    expect(sample(await scrape(), 'decisum_jobs_queued')).toBe(0);
  });

  it('counts a running job whose lease lapsed as expired, and no longer as active', async () => {
    const job = jobOf(await request(stack.url).post('/api/v1/jobs').send({ file: 'sample.csv' }).expect(202));
    // Claimed as an executor would, then never renewed: the executor "died" at once.
    expect((await stack.store.claim(job.id)).kind).toBe('claimed');
    let text = await scrape();
    expect(sample(text, 'decisum_jobs_running')).toBe(1);
    expect(sample(text, 'decisum_jobs_active')).toBe(1);
    expect(sample(text, 'decisum_jobs_lease_expired')).toBe(0);

    await waitFor(async () => {
      const t = await scrape();
      return sample(t, 'decisum_jobs_lease_expired') === 1 ? t : undefined;
    }, { timeoutMs: 15_000, what: 'the lease to lapse' });
    // A scrape reads the counts and the expired leases apart: the one that saw the lapse may have counted just before it.
    text = await scrape();
    expect(sample(text, 'decisum_jobs_lease_expired')).toBe(1);
    expect(sample(text, 'decisum_jobs_running')).toBe(0);
    expect(sample(text, 'decisum_jobs_active')).toBe(0);
    expect(activeOf(await request(stack.url).get('/api/v1/jobs/active').expect(200)).active).toBe(0);

    await request(stack.url).delete(`/api/v1/jobs/${job.id}`).expect(200);
    expect(sample(await scrape(), 'decisum_jobs_lease_expired')).toBe(0);
  });
});
