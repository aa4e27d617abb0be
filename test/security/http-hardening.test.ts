import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { problemOf } from '../support/http';
import { startStack, type Stack } from '../support/stack';

/** Malformed requests are 4xx with a code, never 500; messages carry no server path; headers harden the page and downloads. */
describe('HTTP hardening', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ executors: 0 });
    stack.writeFile('sample.csv', 'a,b\n1,2\n');
    stack.writeFile('page.html', '<script>alert(1)</script>');
  });
  afterAll(() => stack?.stop());

  const nothingQueued = async () => {
    expect(await stack.queueDepth()).toBe(0);
    expect((await stack.store.list({ limit: 10 })).jobs).toEqual([]);
  };

  it.each(['/api/v1/files/local/%c0%ae%c0%ae/etc/passwd', '/api/v1/files/local/%', '/api/v1/files/s3/bucket/%E0%A4%A'])(
    'answers a malformed percent-encoding (%s) with 400 MALFORMED_REQUEST',
    async (url) => {
      const res = await request(stack.url).get(url).expect(400);
      expect(problemOf(res).code).toBe('MALFORMED_REQUEST');
    },
  );

  it('refuses a JSON body in koi8-r with 415 UNSUPPORTED_MEDIA_TYPE, and queues nothing', async () => {
    const res = await request(stack.url).post('/api/v1/jobs').set('Content-Type', 'application/json; charset=koi8-r').send('{"file":"sample.csv"}').expect(415);
    expect(problemOf(res).code).toBe('UNSUPPORTED_MEDIA_TYPE');
    await nothingQueued();
  });

  it('refuses Content-Encoding: compress on a submission and on an upload with 415, and writes nothing', async () => {
    const post = await request(stack.url).post('/api/v1/jobs').set('Content-Type', 'application/json').set('Content-Encoding', 'compress').send('{"file":"sample.csv"}').expect(415);
    expect(problemOf(post).code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const put = await request(stack.url).put('/api/v1/files/local/packed.csv').set('Content-Encoding', 'compress').send('x').expect(415);
    expect(problemOf(put).code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(fs.existsSync(path.join(stack.dataDir, 'packed.csv'))).toBe(false);
    await nothingQueued();
  });

  it('answers invalid JSON with 400 VALIDATION and a body over the limit with 413 PAYLOAD_TOO_LARGE', async () => {
    const bad = await request(stack.url).post('/api/v1/jobs').set('Content-Type', 'application/json').send('{"file":').expect(400);
    expect(problemOf(bad).code).toBe('VALIDATION');
    const big = await request(stack.url).post('/api/v1/jobs').set('Content-Type', 'application/json').send(JSON.stringify({ file: 'x'.repeat(100_000) })).expect(413);
    expect(problemOf(big).code).toBe('PAYLOAD_TOO_LARGE');
    await nothingQueued();
  });

  it('never names a server path in an error: a name too long, a missing file', async () => {
    const long = await request(stack.url).get(`/api/v1/files/local/${'a'.repeat(300)}/b.csv`);
    expect(long.status).toBeGreaterThanOrEqual(400);
    expect(long.status).toBeLessThan(500);
    const missing = await request(stack.url).post('/api/v1/jobs').send({ file: 'nope/missing.csv' }).expect(404);
    for (const res of [long, missing]) {
      expect(JSON.stringify(res.body)).not.toContain(stack.dataDir);
      expect(JSON.stringify(res.body)).not.toMatch(/127\.0\.0\.1|ECONNREFUSED/);
    }
  });

  it('sends downloads as attachments with nosniff, so a stored page never renders in the API’s origin', async () => {
    const res = await request(stack.url).get('/api/v1/files/local/page.html').expect(200);
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="?page\.html"?$/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  it('sets helmet’s headers and a CSP on the page and Swagger UI', async () => {
    for (const url of ['/', '/docs/']) {
      const res = await request(stack.url).get(url).expect(200);
      expect(res.headers['content-security-policy']).toContain("script-src 'self'");
      expect(res.headers['content-security-policy']).not.toContain('upgrade-insecure-requests');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    }
  });
});
