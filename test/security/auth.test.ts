import request from 'supertest';
import { problemOf, jobOf } from '../support/http';
import { startStack, type Stack } from '../support/stack';
import { apiTokens, bearer, testToken } from './helpers';

const writer = testToken('alice', ['jobs:write', 'jobs:read']);
const reader = testToken('bob', ['jobs:read']);
const files = testToken('carol', ['files:read']);

/** Tokens: every /api/v1 route needs one; a missing or wrong one is 401, a missing scope 403, and nothing happens. */
describe('API tokens', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ executors: 0, env: { API_TOKENS: apiTokens(writer, reader, files) } });
    stack.writeFile('sample.csv', 'a,b\n1,2\n');
  });
  afterAll(() => stack?.stop());

  const nothingQueued = async () => {
    expect(await stack.queueDepth()).toBe(0);
    expect((await stack.store.list({ limit: 10 })).jobs).toEqual([]);
  };

  it.each([
    ['get', '/api/v1/jobs'],
    ['get', '/api/v1/jobs/active'],
    ['get', '/api/v1/jobs/some-id'],
    ['delete', '/api/v1/jobs/some-id'],
    ['get', '/api/v1/events'],
    ['get', '/api/v1/files/local/'],
    ['get', '/api/v1/files/local/sample.csv'],
    ['put', '/api/v1/files/local/new.csv'],
    ['post', '/api/v1/jobs'],
  ] as const)('%s %s without a token: 401 UNAUTHORIZED with WWW-Authenticate', async (method, path) => {
    const res = await request(stack.url)[method](path).expect(401);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(problemOf(res).code).toBe('UNAUTHORIZED');
    expect(res.headers['www-authenticate']).toBe('Bearer realm="decisum"');
  });

  it('refuses a wrong token, a non-Bearer scheme and a hash sent as the token, and queues nothing', async () => {
    const wrong = await request(stack.url).post('/api/v1/jobs').set('Authorization', 'Bearer dcs_not-a-token').send({ file: 'sample.csv' }).expect(401);
    expect(problemOf(wrong).code).toBe('UNAUTHORIZED');
    expect(wrong.headers['www-authenticate']).toBe('Bearer realm="decisum", error="invalid_token"');
    const basic = await request(stack.url).post('/api/v1/jobs').set('Authorization', `Basic ${Buffer.from('a:b').toString('base64')}`).send({ file: 'sample.csv' }).expect(401);
    expect(problemOf(basic).code).toBe('UNAUTHORIZED');
    const hash = await request(stack.url).post('/api/v1/jobs').set('Authorization', `Bearer ${writer.entry.sha256}`).send({ file: 'sample.csv' }).expect(401);
    expect(problemOf(hash).code).toBe('UNAUTHORIZED');
    await nothingQueued();
  });

  it('refuses a token without the scope with 403 FORBIDDEN, and queues nothing', async () => {
    const res = await request(stack.url).post('/api/v1/jobs').set(bearer(reader)).send({ file: 'sample.csv' }).expect(403);
    expect(problemOf(res).code).toBe('FORBIDDEN');
    expect(problemOf(res).detail).toContain('jobs:write');
    expect(res.headers['www-authenticate']).toContain('error="insufficient_scope"');
    await nothingQueued();
    expect(problemOf(await request(stack.url).get('/api/v1/jobs').set(bearer(files)).expect(403)).code).toBe('FORBIDDEN');
  });

  it('refuses an upload without files:write and a download without files:read, and writes or reads nothing', async () => {
    const put = await request(stack.url).put('/api/v1/files/local/new.csv').set(bearer(files)).send('x,y\n1,2\n').expect(403);
    expect(problemOf(put).code).toBe('FORBIDDEN');
    expect(await stack.storage.stat({ kind: 'local', path: 'new.csv' }).catch((e: { code: string }) => e.code)).toBe('FILE_NOT_FOUND');
    const get = await request(stack.url).get('/api/v1/files/local/sample.csv').set(bearer(writer)).expect(403);
    expect(problemOf(get).code).toBe('FORBIDDEN');
    expect(get.text).not.toContain('1,2');
  });

  it('accepts the right token with the scope', async () => {
    const res = await request(stack.url).post('/api/v1/jobs').set(bearer(writer)).send({ file: 'sample.csv' }).expect(202);
    expect(jobOf(res).owner).toBe('alice');
    await request(stack.url).get('/api/v1/files/local/sample.csv').set(bearer(files)).expect(200);
  });

  it('leaves the page, the document, health and Swagger UI open, and keeps /metrics off the public port', async () => {
    await request(stack.url).get('/healthz').expect(200);
    await request(stack.url).get('/openapi.json').expect(200);
    await request(stack.url).get('/docs/').expect(200);
    await request(stack.url).get('/').expect(200);
    await request(stack.url).get('/metrics').expect(404);
    await request(stack.metricsUrl).get('/metrics').expect(200);
  });

  it('declares the bearer scheme on every /api/v1 operation', async () => {
    const doc = (await request(stack.url).get('/openapi.json').expect(200)).body as {
      components: { securitySchemes: Record<string, { type: string; scheme: string }> };
      paths: Record<string, Record<string, { security?: unknown[] }>>;
    };
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const op of Object.values(ops)) { expect({ path, security: op.security }).toEqual({ path, security: path.startsWith('/api/v1') ? [{ bearer: [] }] : undefined }); }
    }
  });
});
