import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { startStack, type Stack } from '../support/stack';

/**
 * The storage scope and the limits of issue 10, against the real API, Redis and RabbitMQ: each
 * refusal has its status and code, names its limit, and leaves nothing read, written or queued.
 * S3 points at a closed port: a request that left would fail with another code.
 */
let stack: Stack;

const problem = (res: request.Response) => JSON.parse(res.text) as { code: string; detail: string };

async function nothingQueued(): Promise<void> {
  expect((await stack.store.list({ limit: 10 })).jobs).toEqual([]);
  expect(await stack.queueDepth()).toBe(0);
}

beforeAll(async () => {
  stack = await startStack({
    executors: 0,
    env: {
      S3_ENDPOINT: 'http://127.0.0.1:9',
      AWS_ACCESS_KEY_ID: 'x',
      AWS_SECRET_ACCESS_KEY: 'y',
      S3_BUCKETS: 'decisum,shared/team-a',
      MAX_UPLOAD_BYTES: '1000',
      MIN_FREE_BYTES: '0',
    },
  });
});
afterAll(() => stack?.stop());

describe('storage scope (S3_BUCKETS)', () => {
  test.each([
    ['s3://decisum/../payroll-private/hr/salaries.csv', 400, 'INVALID_LOCATION'],
    ['s3://decisum/a//b.csv', 400, 'INVALID_LOCATION'],
    ['s3://decisum/%2e%2e/payroll-private/x.csv', 400, 'INVALID_LOCATION'],
    ['s3://payroll-private/hr/salaries.csv', 403, 'LOCATION_NOT_ALLOWED'],
    ['s3://shared/team-b/data.csv', 403, 'LOCATION_NOT_ALLOWED'],
    ['../etc/passwd', 400, 'PATH_OUTSIDE_DATA_DIR'],
  ])('a job on %s is refused with %i %s, nothing queued', async (file, status, code) => {
    const res = await request(stack.url).post('/api/v1/jobs').send({ file });
    expect([res.status, problem(res).code]).toEqual([status, code]);
    await nothingQueued();
  });

  test('the files API lists, reads and writes only inside the scope', async () => {
    for (const [method, url] of [
      ['get', '/api/v1/files/s3/payroll-private/'],
      ['get', '/api/v1/files/s3/payroll-private/hr/salaries.csv'],
      ['put', '/api/v1/files/s3/payroll-private/hr/salaries.csv'],
      ['get', '/api/v1/files/s3/shared/'],
    ] as const) {
      const res = await request(stack.url)[method](url).send(method === 'put' ? 'a\n1\n' : undefined);
      expect([url, res.status, problem(res).code]).toEqual([url, 403, 'LOCATION_NOT_ALLOWED']);
      expect(problem(res).detail).toContain('s3://decisum/');
    }
    const dots = await request(stack.url).get('/api/v1/files/s3/decisum/%2e%2e/payroll-private/x.csv');
    expect([dots.status, problem(dots).code]).toEqual([400, 'INVALID_LOCATION']);
  });
});

describe('uploads', () => {
  test('a declared body over MAX_UPLOAD_BYTES is 413 UPLOAD_TOO_LARGE before it is read', async () => {
    const res = await request(stack.url).put('/api/v1/files/local/big.csv').set('Content-Type', 'text/csv').send(Buffer.alloc(5000, 'a'));
    expect([res.status, problem(res).code]).toEqual([413, 'UPLOAD_TOO_LARGE']);
    expect(problem(res).detail).toContain('1000 bytes');
    expect(fs.existsSync(path.join(stack.dataDir, 'big.csv'))).toBe(false);
  });

  test('a chunked body is counted as it streams: 413, and no partial file is left', async () => {
    const req = request(stack.url).put('/api/v1/files/local/chunked.csv').set('Transfer-Encoding', 'chunked');
    for (let i = 0; i < 5; i++) { req.write(Buffer.alloc(400, 'b')); }
    const res = await req;
    expect([res.status, problem(res).code]).toEqual([413, 'UPLOAD_TOO_LARGE']);
    expect(fs.readdirSync(stack.dataDir).filter((n) => n !== '.decisum')).toEqual([]);
  });

  test('an upload within the limit is stored', async () => {
    const res = await request(stack.url).put('/api/v1/files/local/small.csv').set('Content-Type', 'text/csv').send('a\n1\n');
    expect(res.status).toBe(201);
    fs.rmSync(path.join(stack.dataDir, 'small.csv'));
  });
});

describe('listing pages', () => {
  test('?limit pages through a folder in path order with nextCursor', async () => {
    for (const name of ['p/a.csv', 'p/b/c.csv', 'p/b-d.csv', 'p/e.csv']) { stack.writeFile(name, 'x\n'); }
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const res = await request(stack.url).get('/api/v1/files/local/p/').query({ limit: 2, ...(cursor ? { cursor } : {}) });
      expect(res.status).toBe(200);
      const body = res.body as { entries: { path: string }[]; nextCursor?: string };
      expect(body.entries.length).toBeLessThanOrEqual(2);
      seen.push(...body.entries.map((e) => e.path));
      cursor = body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(['p/a.csv', 'p/b-d.csv', 'p/b/c.csv', 'p/e.csv']);
    const tooMany = await request(stack.url).get('/api/v1/files/local/p/').query({ limit: 100_000 });
    expect([tooMany.status, problem(tooMany).code]).toEqual([400, 'VALIDATION']);
    fs.rmSync(path.join(stack.dataDir, 'p'), { recursive: true });
  });
});

describe('free space floor (MIN_FREE_BYTES)', () => {
  let tight: Stack;
  beforeAll(async () => {
    tight = await startStack({ executors: 0, env: { MIN_FREE_BYTES: String(2 ** 52) } });
  });
  afterAll(() => tight?.stop());

  test('an upload that would leave less free is 507 INSUFFICIENT_STORAGE, nothing written', async () => {
    const res = await request(tight.url).put('/api/v1/files/local/x.csv').send('a\n1\n');
    expect([res.status, problem(res).code]).toEqual([507, 'INSUFFICIENT_STORAGE']);
    expect(problem(res).detail).toContain(String(2 ** 52));
    expect(problem(res).detail).not.toContain(tight.dataDir);
    expect(fs.readdirSync(tight.dataDir)).toEqual([]);
  });
});

describe('request rate and active jobs', () => {
  let limited: Stack;
  beforeAll(async () => {
    limited = await startStack({ executors: 0, env: { RATE_LIMIT_PER_MINUTE: '5', MAX_ACTIVE_JOBS_PER_OWNER: '2' } });
    limited.writeFile('a.csv', 'a\n1\n');
  });
  afterAll(() => limited?.stop());

  test('the third job while two are active is 429 TOO_MANY_ACTIVE_JOBS; cancelling one frees a place', async () => {
    const first = await request(limited.url).post('/api/v1/jobs').send({ file: 'a.csv' });
    const second = await request(limited.url).post('/api/v1/jobs').send({ file: 'a.csv' });
    expect([first.status, second.status]).toEqual([202, 202]);
    const third = await request(limited.url).post('/api/v1/jobs').send({ file: 'a.csv' });
    expect([third.status, problem(third).code, third.headers['retry-after']]).toEqual([429, 'TOO_MANY_ACTIVE_JOBS', '10']);
    expect(problem(third).detail).toContain('2 jobs');
    expect((await limited.store.list({ limit: 10 })).jobs).toHaveLength(2);
    expect(await limited.queueDepth()).toBe(2);
    await limited.store.cancel((first.body as { id: string }).id);
    const fourth = await request(limited.url).post('/api/v1/jobs').send({ file: 'a.csv' });
    expect(fourth.status).toBe(202);
  });

  test('past RATE_LIMIT_PER_MINUTE: 429 RATE_LIMITED with Retry-After and RateLimit headers; health is never limited', async () => {
    let res: request.Response;
    do {
      res = await request(limited.url).get('/api/v1/jobs/active');
    } while (res.status === 200);
    expect([res.status, problem(res).code]).toEqual([429, 'RATE_LIMITED']);
    expect(problem(res).detail).toContain('5 a minute');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(res.headers['ratelimit-policy']).toBe('5;w=60');
    expect(res.headers.ratelimit).toMatch(/^limit=5, remaining=0, reset=\d+$/);
    const post = await request(limited.url).post('/api/v1/jobs').send({ file: 'a.csv' });
    expect(post.status).toBe(429);
    expect((await request(limited.url).get('/healthz')).status).toBe(200);
  });
});

describe('the executor checks the scope again', () => {
  test('a queued message naming a bucket outside S3_BUCKETS fails its job with LOCATION_NOT_ALLOWED, never read', async () => {
    const { job, message } = await stack.store.create({ file: 's3://payroll-private/hr/salaries.csv', options: { step: 10, offset: 0 } });
    await stack.broker.publish(message);
    await stack.addExecutor();
    const done = await stack.waitForJob(job.id);
    expect([done.status, done.error?.code, done.attempts]).toEqual(['failed', 'LOCATION_NOT_ALLOWED', 1]);
    expect(done.progress.bytesRead).toBe(0);
  });
});
