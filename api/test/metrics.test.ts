import fs from 'node:fs';
import request from 'supertest';
import { SAMPLE } from '../../test/support/sample';
import { startStack, type Stack } from '../../test/support/stack';
import { sample } from '../../test/support/prometheus';
import { jobOf } from '../../test/support/http';

describe('GET /metrics on the API', () => {
  let stack: Stack;
  const scrape = async () => {
    const res = await request(stack.url).get('/metrics').expect(200);
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
    expect(sample(text, 'decisum_jobs_submitted_total')).toBe(0);
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

    await request(stack.url).delete(`/api/v1/jobs/${jobOf(first).id}`).expect(200);
    expect(sample(await scrape(), 'decisum_jobs_queued')).toBe(0);
  });
});
