import fs from 'node:fs';
import { Writable } from 'node:stream';
import request from 'supertest';
import { createLogger, createRegistry } from '@decisum/shared';
import { createApp, type App } from '../src/app';
import { createMetrics, type Metrics } from '../src/metrics';
import { SAMPLE } from '../../test/support/sample';
import { startStack, type Stack } from '../../test/support/stack';
import { sample } from '../../test/support/prometheus';
import { jobOf } from '../../test/support/http';

interface Line {
  msg: string;
  level: number;
  jobId?: string;
  req?: { method: string; url: string };
  res?: { statusCode: number };
}

/** The stack's store and broker behind an app whose logs are kept, as pino writes them. */
describe('request logs and the request-duration histogram', () => {
  let stack: Stack;
  let app: App;
  let metrics: Metrics;
  const lines: Line[] = [];
  const requestLines = () => lines.filter((l) => l.msg === 'request completed' || l.msg === 'request errored');

  beforeAll(async () => {
    stack = await startStack({ executors: 0 });
    stack.writeFile('sample.csv', fs.readFileSync(SAMPLE));
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const text of chunk.toString().split('\n').filter(Boolean)) { lines.push(JSON.parse(text) as Line); }
        done();
      },
    });
    const { store, broker, storage, feed } = stack;
    metrics = createMetrics(store, createRegistry());
    app = createApp({ store, broker, storage, feed, dataDir: stack.dataDir, logger: createLogger('test', 'info', sink), metrics });
  });
  afterAll(() => stack?.stop());

  it('logs one line per request, with the job id on lines about a job', async () => {
    const job = jobOf(await request(app).post('/api/v1/jobs').send({ file: 'sample.csv' }).expect(202));
    await request(app).get(`/api/v1/jobs/${job.id}`).expect(200);
    await request(app).get('/api/v1/jobs/no-such-job').expect(404);
    await request(app).get('/api/v1/jobs/active').expect(200);

    const byUrl = (url: string) => requestLines().filter((l) => l.req?.url === url);
    expect(byUrl('/api/v1/jobs')).toEqual([expect.objectContaining({ jobId: job.id, res: { statusCode: 202 } })]);
    expect(byUrl(`/api/v1/jobs/${job.id}`)).toEqual([expect.objectContaining({ jobId: job.id, res: { statusCode: 200 } })]);
    expect(byUrl('/api/v1/jobs/no-such-job')).toEqual([expect.objectContaining({ jobId: 'no-such-job', res: { statusCode: 404 } })]);
    expect(byUrl('/api/v1/jobs/active')[0].jobId).toBeUndefined();
    // The submission's own line names the job too.
    expect(lines.filter((l) => l.msg === 'job accepted').map((l) => l.jobId)).toEqual([job.id]);
  });

  it('keeps probes out of the info log', async () => {
    await request(app).get('/healthz').expect(200);
    expect(requestLines().filter((l) => l.req?.url === '/healthz')).toEqual([]);
  });

  it('times each request under its route pattern, method and status', async () => {
    await request(app).get('/api/v1/jobs/active').expect(200);
    await request(app).get('/api/v1/jobs/one').expect(404);
    await request(app).get('/api/v1/jobs/two').expect(404);
    await request(app).get('/no/such/route').expect(404);
    const { job } = await stack.store.create({ file: 'sample.csv', options: { step: 10, offset: 0 } });
    await request(app).get(`/api/v1/jobs/${job.id}?wait=0.2`).expect(200);

    // Served on METRICS_PORT by start.ts, not by the app: read the registry it serves.
    const text = await metrics.registry.metrics();
    expect(text).toContain('# TYPE http_request_duration_seconds histogram');
    const count = (labels: string) => sample(text, 'http_request_duration_seconds_count', labels);
    expect(count('{method="GET",route="/api/v1/jobs/active",status_code="200"}')).toBeGreaterThanOrEqual(1);
    // Two ids, one series: the label is the pattern, not the path.
    expect(count('{method="GET",route="/api/v1/jobs/:id",status_code="404"}')).toBe(3);
    expect(count('{method="POST",route="/api/v1/jobs",status_code="202"}')).toBe(1);
    expect(count('{method="GET",route="unmatched",status_code="404"}')).toBe(1);
    // Held open on purpose: a series of its own, out of the quick answers' quantiles.
    expect(count('{method="GET",route="/api/v1/jobs/:id?wait",status_code="200"}')).toBe(1);
  });
});
