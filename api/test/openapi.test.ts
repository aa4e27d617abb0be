import fs from 'node:fs';
import type { Express } from 'express';
import request, { type Response } from 'supertest';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import { createLogger, createRegistry, type JobFeed, type JobStore, type Storage } from '@decisum/shared';
import { createApp, type App } from '../src/app';
import { createMetrics } from '../src/metrics';
import type { OpenApiDocument } from '../src/openapi';
import { SAMPLE, SAMPLE_SUMS } from '../../test/support/sample';
import { startStack, type Stack } from '../../test/support/stack';
import { jobOf, pageOf } from '../../test/support/http';

type Doc = OpenApiDocument;

/** The app as main.ts builds it, with inert deps: route discovery needs no connection. */
function inertApp(): App {
  const store = {} as JobStore;
  return createApp({
    store,
    broker: { publish: () => Promise.resolve(), connected: true },
    storage: {} as Storage,
    feed: {} as JobFeed,
    logger: createLogger('test', 'silent'),
    metrics: createMetrics(store, createRegistry()),
    dataDir: '/nonexistent',
  });
}

// Written by the routes as the app adds them.
const doc: Doc = inertApp().openapi;

interface Layer {
  route?: { path: string; methods: Record<string, boolean | undefined> };
  handle: { stack?: Layer[] };
  rawPath?: unknown;
}

/** Every `METHOD /path` the app routes, found by walking its router stack (express 5 / router 2). */
function appRoutes(app: Express): string[] {
  const out: string[] = [];
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        const full = layer.route.path === '/' && prefix ? prefix : `${prefix}${layer.route.path}`;
        for (const [method, on] of Object.entries(layer.route.methods)) { if (on && method !== '_all') { out.push(`${method.toUpperCase() } ${full}`); } }
      } else if (layer.handle.stack && typeof layer.rawPath === 'string') {
        walk(layer.handle.stack, layer.rawPath === '/' ? prefix : `${prefix}${layer.rawPath}`);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, '');
  return out;
}

/** One spelling for both sides: every parameter becomes {}; a listing path (trailing /) is the optional-rest route. */
const canonicalExpress = (route: string) => route.replace(/\{\/\*\w+\}/g, '/{}').replace(/:\w+/g, '{}');
const canonicalOpenApi = (route: string) => route.replace(/\{\w+\}/g, '{}').replace(/\/$/, '/{}');

function docRoutes(): string[] {
  return Object.entries(doc.paths ?? {}).flatMap(([path, item]) =>
    ['get', 'put', 'post', 'delete', 'patch'].filter((m) => m in (item as object)).map((m) => `${m.toUpperCase()} ${path}`),
  );
}

describe('the OpenAPI document', () => {
  it('is OpenAPI 3.1 with examples from the reference sample', () => {
    expect(doc.openapi).toBe('3.1.0');
    const schemas = doc.components?.schemas ?? {};
    for (const name of ['Job', 'JobSubmission', 'JobResult', 'ActiveCount', 'JobPage', 'Problem', 'FileListing']) { expect(schemas[name]).toBeDefined(); }
    const job = doc.paths?.['/api/v1/jobs/{id}']?.get?.responses?.['200'] as { content: Record<string, { examples: Record<string, { value: { result?: { columns: { sum: string }[] } } }> }> };
    const sums = job.content['application/json'].examples.succeeded.value.result!.columns.map((c) => c.sum);
    expect(sums).toEqual(SAMPLE_SUMS.map((c) => c.sum));
  });

  it('documents every route of the app, and nothing the app does not route', () => {
    const fromApp = new Set(appRoutes(inertApp()).map(canonicalExpress));
    const fromDoc = new Set(docRoutes().map(canonicalOpenApi));
    expect(fromApp.size).toBeGreaterThanOrEqual(10);
    expect([...fromApp].filter((r) => !fromDoc.has(r))).toEqual([]);
    expect([...fromDoc].filter((r) => !fromApp.has(r))).toEqual([]);
  });

  it('gives every error response the problem+json schema', () => {
    for (const [path, item] of Object.entries(doc.paths ?? {})) {
      for (const [method, op] of Object.entries(item as Record<string, { responses?: Record<string, { content?: Record<string, unknown> }> }>)) {
        for (const [status, response] of Object.entries(op.responses ?? {})) {
          if (Number(status) < 400 || path === '/readyz') { continue; }
          expect([`${method} ${path} ${status}`, Object.keys(response.content ?? {})]).toEqual([`${method} ${path} ${status}`, ['application/problem+json']]);
        }
      }
    }
  });
});

/** Compiles the document's response schemas with a JSON Schema 2020-12 validator (the dialect of OpenAPI 3.1). */
class ResponseValidator {
  private readonly ajv = new Ajv2020({ allErrors: true, strict: true });
  private readonly cache = new Map<string, ValidateFunction>();
  private static readonly BASE = 'https://decisum.dev/openapi/components';

  constructor(private readonly openapi: Doc) {
    this.ajv.addKeyword('example');
    this.ajv.addSchema(this.rewrite({ $id: ResponseValidator.BASE, $defs: openapi.components?.schemas ?? {} }));
  }

  /** `#/components/schemas/X` becomes a reference into the schema registered above. */
  private rewrite<T>(schema: T): T {
    return JSON.parse(
      JSON.stringify(schema).replace(/"#\/components\/schemas\/([^"]+)"/g, (_m, name: string) => `"${ResponseValidator.BASE}#/$defs/${name}"`),
    ) as T;
  }

  /** Asserts the response's status and media type are documented for the operation and its body matches the schema. */
  check(method: string, path: string, res: Response): void {
    const op = (this.openapi.paths?.[path] as Record<string, { responses: Record<string, { content?: Record<string, { schema?: object }> }> }> | undefined)?.[method];
    if (!op) { throw new Error(`${method} ${path} is not in the document`); }
    const documented = op.responses[String(res.status)];
    if (!documented) { throw new Error(`${method} ${path} answered ${res.status}, which is not documented: ${JSON.stringify(res.body) }`); }
    const mediaType = String(res.headers['content-type'] ?? '').split(';')[0].trim();
    const media = documented.content?.[mediaType];
    if (!media?.schema) { throw new Error(`${method} ${path} ${res.status} answered ${mediaType}, documented: ${Object.keys(documented.content ?? {}).join(', ') }`); }
    const key = `${method} ${path} ${res.status} ${mediaType}`;
    let validate = this.cache.get(key);
    if (!validate) {
      validate = this.ajv.compile(this.rewrite(media.schema));
      this.cache.set(key, validate);
    }
    if (!validate(res.body)) {
      throw new Error(`${key}: the body does not match the document: ${this.ajv.errorsText(validate.errors)}\n${JSON.stringify(res.body)}`);
    }
  }
}

describe('real responses validate against the document', () => {
  let stack: Stack;
  const validator = new ResponseValidator(doc);
  const api = () => request(stack.url);

  beforeAll(async () => {
    stack = await startStack({ executors: 1, env: { CALLBACK_HOSTS: 'hooks.example.com', CALLBACK_SECRET: 'openapi-test-secret-16' } });
    stack.writeFile('sample.csv', fs.readFileSync(SAMPLE));
    stack.writeFile('bad.csv', 'id,a,b\n1,2,3\n2,x,4\n');
  });
  afterAll(() => stack?.stop());

  it('the submission, a succeeded job, a failed job, a page and the active count', async () => {
    const submitted = await api().post('/api/v1/jobs').send({ file: 'sample.csv' }).expect(202);
    validator.check('post', '/api/v1/jobs', submitted);
    await stack.waitForJob(jobOf(submitted).id);
    const succeeded = await api().get(`/api/v1/jobs/${jobOf(submitted).id}`).expect(200);
    expect(jobOf(succeeded).status).toBe('succeeded');
    validator.check('get', '/api/v1/jobs/{id}', succeeded);

    const bad = await api().post('/api/v1/jobs').send({ file: 'bad.csv', step: 1, delimiter: ',', header: true }).expect(202);
    await stack.waitForJob(jobOf(bad).id);
    const failed = await api().get(`/api/v1/jobs/${jobOf(bad).id}`).expect(200);
    expect(failed.body).toMatchObject({ status: 'failed', error: { code: 'NON_NUMERIC', row: 3 } });
    validator.check('get', '/api/v1/jobs/{id}', failed);

    const page = await api().get('/api/v1/jobs?limit=1').expect(200);
    expect(pageOf(page).nextCursor).toBeDefined();
    validator.check('get', '/api/v1/jobs', page);
    validator.check('get', '/api/v1/jobs', await api().get('/api/v1/jobs?status=failed').expect(200));
    validator.check('get', '/api/v1/jobs/active', await api().get('/api/v1/jobs/active').expect(200));
    validator.check('get', '/api/v1/jobs/{id}', await api().get(`/api/v1/jobs/${jobOf(submitted).id}?wait=5`).expect(200));
  });

  it('a job with a callback, and its refusal for a host not listed', async () => {
    // The host never answers here: the job's callback stays pending, which the document describes too.
    const submitted = await api().post('/api/v1/jobs').send({ file: 'sample.csv', callback: { url: 'https://hooks.example.com/x' } }).expect(202);
    validator.check('post', '/api/v1/jobs', submitted);
    expect(jobOf(submitted).callback).toEqual({ url: 'https://hooks.example.com/x', status: 'pending', attempts: 0 });
    validator.check('get', '/api/v1/jobs/{id}', await api().get(`/api/v1/jobs/${jobOf(submitted).id}?wait=10`).expect(200));
    const refused = await api().post('/api/v1/jobs').send({ file: 'sample.csv', callback: { url: 'https://evil.example.net/x' } }).expect(400);
    expect(refused.body).toMatchObject({ code: 'CALLBACK_NOT_ALLOWED' });
    validator.check('post', '/api/v1/jobs', refused);
  });

  it('the event stream is documented with its query and header', () => {
    const op = doc.paths?.['/api/v1/events']?.get as { parameters: { name: string; in: string }[]; responses: Record<string, { content?: Record<string, unknown> }> };
    expect(op.parameters.map((p) => `${p.in} ${p.name}`).sort()).toEqual(['header Last-Event-ID', 'query job']);
    expect(Object.keys(op.responses['200'].content ?? {})).toEqual(['text/event-stream']);
    const get = doc.paths?.['/api/v1/jobs/{id}']?.get as { parameters: { name: string; in: string }[] };
    expect(get.parameters.map((p) => `${p.in} ${p.name}`)).toContain('query wait');
    expect(doc.components?.schemas?.JobSubmission).toMatchObject({ properties: { callback: { $ref: '#/components/schemas/Callback' } } });
  });

  it('a cancellation, or the 409 for a job that finished first', async () => {
    const body = jobOf(await api().post('/api/v1/jobs').send({ file: 'sample.csv' }).expect(202));
    const res = await api().delete(`/api/v1/jobs/${body.id}`);
    expect([200, 409]).toContain(res.status);
    validator.check('delete', '/api/v1/jobs/{id}', res);
    await stack.waitForJob(body.id);
  });

  it('problems: 400 for a bad body, a bad query and a path outside DATA_DIR; 404 for a job, a file and a route', async () => {
    const cases: [string, string, Response][] = [
      ['post', '/api/v1/jobs', await api().post('/api/v1/jobs').send({ file: 'sample.csv', step: 0 }).expect(400)],
      ['post', '/api/v1/jobs', await api().post('/api/v1/jobs').send({ file: '../x.csv' }).expect(400)],
      ['post', '/api/v1/jobs', await api().post('/api/v1/jobs').set('Content-Type', 'application/json').send('{"file":').expect(400)],
      ['post', '/api/v1/jobs', await api().post('/api/v1/jobs').send({ file: 'missing.csv' }).expect(404)],
      ['get', '/api/v1/jobs', await api().get('/api/v1/jobs?limit=0').expect(400)],
      ['get', '/api/v1/jobs/{id}', await api().get('/api/v1/jobs/no-such-job').expect(404)],
      ['get', '/api/v1/jobs/{id}', await api().get('/api/v1/jobs/no-such-job?wait=61').expect(400)],
      ['get', '/api/v1/events', await api().get('/api/v1/events?job=no-such-job').expect(404)],
      ['delete', '/api/v1/jobs/{id}', await api().delete('/api/v1/jobs/no-such-job').expect(404)],
      ['get', '/api/v1/files/local/{path}', await api().get('/api/v1/files/local/missing.csv').expect(404)],
    ];
    for (const [method, path, res] of cases) {
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      validator.check(method, path, res);
    }
  });

  it('the files API: upload, listing and download', async () => {
    const put = await api().put('/api/v1/files/local/up/a.csv').set('Content-Type', 'text/csv').send('a,b\n1,2\n').expect(201);
    validator.check('put', '/api/v1/files/local/{path}', put);
    validator.check('get', '/api/v1/files/local/', await api().get('/api/v1/files/local/').expect(200));
    validator.check('get', '/api/v1/files/local/{path}', await api().get('/api/v1/files/local/up/').expect(200));
    const download = await api().get('/api/v1/files/local/up/a.csv').buffer(true).parse((res, cb) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => cb(null, text));
    });
    expect(download.status).toBe(200);
    expect(download.body).toBe('a,b\n1,2\n');
    expect(download.headers['content-type']).toMatch(/^text\/csv/);
  });

  it('health, readiness, metrics and the document itself', async () => {
    validator.check('get', '/healthz', await api().get('/healthz').expect(200));
    validator.check('get', '/readyz', await api().get('/readyz').expect(200));
    // Not on the public port: on METRICS_PORT.
    await api().get('/metrics').expect(404);
    const metrics = await request(stack.metricsUrl).get('/metrics').expect(200);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);

    const served = await api().get('/openapi.json').expect(200);
    expect(served.body).toEqual(JSON.parse(JSON.stringify(doc)));
  });

  it('Swagger UI at /docs, with its assets served locally', async () => {
    await api().get('/docs').expect(301).expect('Location', '/docs/');
    const page = await api().get('/docs/').expect(200);
    expect(page.text).toContain('swagger-ui');
    await api().get('/docs/swagger-ui.css').expect(200);
    await api().get('/docs/swagger-ui-bundle.js').expect(200);
    const init = await api().get('/docs/swagger-ui-init.js').expect(200);
    expect(init.text).toContain('/api/v1/jobs/{id}');
  });
});
