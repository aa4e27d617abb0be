import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import express, { type NextFunction, type Request, type Response } from 'express';
import request from 'supertest';
import { ANY_BUCKET, AppError, createLogger, createS3Client, LocalStorage, S3Storage, StorageRouter } from '@decisum/shared';
import { ApiDocs } from '../src/openapi';
import { createFilesRouter } from '../src/routes/files';
import { makeCsv, sha256 } from '../../test/support/data';
import { startS3, uniqueBucket, type TestS3 } from '../../test/support/s3';
import { problemOf, listingOf, fileOf } from '../../test/support/http';

const reads = { retries: 3, idleTimeoutMs: 2_000, backoffMs: 10 };
let s3: TestS3;
let client: S3Client;
let dataDir: string;
let bucket: string;
let app: express.Express;
let local: LocalStorage;

/** Binary bodies as Buffers. */
function binary(res: request.Response, cb: (err: Error | null, body: Buffer) => void): void {
  const parts: Buffer[] = [];
  res.on('data', (c: Buffer) => parts.push(c));
  res.on('end', () => cb(null, Buffer.concat(parts)));
}

beforeAll(async () => {
  s3 = await startS3();
  client = createS3Client(s3.config());
  bucket = uniqueBucket('files');
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-files-'));
  const storage = new StorageRouter({
    local: (local = new LocalStorage({ dataDir, reads })),
    s3: new S3Storage({ client, reads, partSize: 5 * 1024 * 1024 }),
    scope: ANY_BUCKET,
  });
  app = express();
  app.use('/api/v1/files', createFilesRouter({ storage, logger: createLogger('test', 'silent'), dataDir, limits: { uploadBytes: 1024 ** 3, minFreeBytes: 0, listingPage: 1000 } }, new ApiDocs(), '/api/v1/files'));
  // Stands in for the app's problem+json middleware.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e = err instanceof AppError ? err : new AppError('INTERNAL', String(err));
    res.status(e.status).type('application/problem+json').json({ code: e.code, message: e.message });
  });
});

afterAll(async () => {
  client.destroy();
  await s3.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('local files', () => {
  test('PUT streams a file in, GET streams it back, a trailing / lists it', async () => {
    const data = makeCsv(3 * 1024 * 1024);
    const put = await request(app).put('/api/v1/files/local/reports/2024/a.csv').set('Content-Type', 'text/csv').send(data);
    expect(put.status).toBe(201);
    expect(put.body).toEqual({ location: 'reports/2024/a.csv', size: data.length, modified: expect.any(String) });

    const get = await request(app).get('/api/v1/files/local/reports/2024/a.csv').buffer(true).parse(binary);
    expect(get.status).toBe(200);
    expect(get.headers['content-type']).toMatch(/^text\/csv/);
    expect(Number(get.headers['content-length'])).toBe(data.length);
    expect(sha256(get.body as Buffer)).toBe(sha256(data));

    const list = await request(app).get('/api/v1/files/local/reports/');
    expect(list.status).toBe(200);
    expect(listingOf(list).entries).toEqual([
      { path: 'reports/2024/a.csv', location: 'reports/2024/a.csv', size: data.length, modified: fileOf(put).modified },
    ]);
    const root = await request(app).get('/api/v1/files/local/');
    expect(listingOf(root).entries.map((e) => e.path)).toEqual(['reports/2024/a.csv']);
  });

  test('errors: missing 404, escaping 400, a folder without / 400', async () => {
    fs.mkdirSync(path.join(dataDir, 'folder'), { recursive: true });
    const missing = await request(app).get('/api/v1/files/local/nope.csv');
    expect([missing.status, problemOf(missing).code]).toEqual([404, 'FILE_NOT_FOUND']);
    expect(missing.headers['content-type']).toMatch(/problem\+json/);

    const escape = await request(app).get('/api/v1/files/local/a/%2e%2e/%2e%2e/etc/passwd');
    expect([escape.status, problemOf(escape).code]).toEqual([400, 'PATH_OUTSIDE_DATA_DIR']);
    const putEscape = await request(app).put('/api/v1/files/local/%2e%2e/x.csv').send('a\n');
    expect([putEscape.status, problemOf(putEscape).code]).toEqual([400, 'PATH_OUTSIDE_DATA_DIR']);
    // An empty first segment is an absolute path, refused like one in a job's file, and nothing is written.
    const putAbsolute = await request(app).put('/api/v1/files/local//abs/x.csv').send('a\n');
    expect([putAbsolute.status, problemOf(putAbsolute).code]).toEqual([400, 'PATH_OUTSIDE_DATA_DIR']);
    expect(fs.existsSync(path.join(dataDir, 'abs'))).toBe(false);

    const folder = await request(app).get('/api/v1/files/local/folder');
    expect([folder.status, problemOf(folder).code]).toEqual([400, 'VALIDATION']);
    const putFolder = await request(app).put('/api/v1/files/local/folder/').send('a\n');
    expect([putFolder.status, problemOf(putFolder).code]).toEqual([400, 'VALIDATION']);
  });
});

describe("decisum's own folder (.decisum/, the results archive)", () => {
  test('is never listed, read or written: 403 PATH_RESERVED', async () => {
    const doc = path.join(dataDir, '.decisum', 'results', 'p', 'job.json');
    fs.mkdirSync(path.dirname(doc), { recursive: true });
    fs.writeFileSync(doc, '{"secret":true}\n');
    fs.writeFileSync(path.join(dataDir, 'visible.csv'), 'a\n1\n');

    const root = await request(app).get('/api/v1/files/local/').expect(200);
    const paths = listingOf(root).entries.map((e) => e.path);
    expect(paths).toContain('visible.csv');
    expect(paths.filter((p) => p.startsWith('.decisum'))).toEqual([]);
    for (const target of ['.decisum/', '.decisum/results/p/job.json', 'x/%2e%2e/.decisum/results/p/job.json', '.decisum/results/']) {
      const res = await request(app).get(`/api/v1/files/local/${target}`);
      expect([res.status, problemOf(res).code]).toEqual([403, 'PATH_RESERVED']);
      expect(JSON.stringify(res.body)).not.toContain(dataDir);
    }
    const put = await request(app).put('/api/v1/files/local/.decisum/results/p/job.json').send('{}');
    expect([put.status, problemOf(put).code]).toEqual([403, 'PATH_RESERVED']);
    expect(fs.readFileSync(doc, 'utf8')).toBe('{"secret":true}\n');
  });
});

describe('If-None-Match: * (create, never replace)', () => {
  test('a new file is written; an existing one is refused with 412 FILE_EXISTS and left as it was', async () => {
    const url = '/api/v1/files/local/once/a.csv';
    const first = await request(app).put(url).set('If-None-Match', '*').send('a\n1\n');
    expect(first.status).toBe(201);
    const again = await request(app).put(url).set('If-None-Match', '*').send('a\n2\n');
    expect([again.status, problemOf(again).code, (again.body as { message: string }).message]).toEqual([412, 'FILE_EXISTS', 'once/a.csv already exists']);
    expect(fs.readFileSync(path.join(dataDir, 'once', 'a.csv'), 'utf8')).toBe('a\n1\n');
    // Without the header a PUT replaces, as before.
    expect((await request(app).put(url).send('a\n3\n')).status).toBe(201);
    expect(fs.readFileSync(path.join(dataDir, 'once', 'a.csv'), 'utf8')).toBe('a\n3\n');
  });

  test('an entity tag in If-None-Match is refused (400), not ignored, and nothing is written', async () => {
    const res = await request(app).put('/api/v1/files/local/once/etag.csv').set('If-None-Match', '"abc"').send('a\n');
    expect([res.status, problemOf(res).code]).toEqual([400, 'VALIDATION']);
    expect((res.body as { message: string }).message).toContain('If-None-Match: "abc"');
    expect(fs.existsSync(path.join(dataDir, 'once', 'etag.csv'))).toBe(false);
  });

  test('two exclusive writes racing for one name: one wins whole, the other gets FILE_EXISTS, no temp file is left', async () => {
    const loc = { kind: 'local', path: 'race/r.csv' } as const;
    const bodies = [new PassThrough(), new PassThrough()];
    const writes = bodies.map((body) => local.write(loc, body, { exclusive: true }).then(() => 'ok', (err: AppError) => err.code));
    // Both bodies are in flight before either ends, so the name is free when both start.
    bodies[0].write('x\n');
    bodies[1].write('y\n');
    bodies[0].end('1\n');
    bodies[1].end('2\n');
    const outcomes = await Promise.all(writes);
    expect(outcomes.slice().sort()).toEqual(['FILE_EXISTS', 'ok']);
    const winner = outcomes.indexOf('ok');
    expect(fs.readFileSync(path.join(dataDir, 'race', 'r.csv'), 'utf8')).toBe(['x\n1\n', 'y\n2\n'][winner]);
    expect(fs.readdirSync(path.join(dataDir, 'race'))).toEqual(['r.csv']);
  });

  test('S3: an existing key is refused with 412 before the body is stored', async () => {
    const url = `/api/v1/files/s3/${bucket}/once/b.csv`;
    expect((await request(app).put(url).set('If-None-Match', '*').send('b\n1\n')).status).toBe(201);
    const again = await request(app).put(url).set('If-None-Match', '*').send('b\n2\n');
    expect([again.status, problemOf(again).code]).toEqual([412, 'FILE_EXISTS']);
    const get = await request(app).get(url).buffer(true).parse(binary);
    expect((get.body as Buffer).toString()).toBe('b\n1\n');
  });
});

describe('S3 files', () => {
  test('PUT uploads in parts, GET downloads, a trailing / lists under the prefix', async () => {
    const data = makeCsv(11 * 1024 * 1024);
    const put = await request(app).put(`/api/v1/files/s3/${bucket}/in/big.csv`).send(data);
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({ location: `s3://${bucket}/in/big.csv`, size: data.length });

    const get = await request(app).get(`/api/v1/files/s3/${bucket}/in/big.csv`).buffer(true).parse(binary);
    expect(get.status).toBe(200);
    expect(Number(get.headers['content-length'])).toBe(data.length);
    expect(get.headers.etag).toBeDefined();
    expect(sha256(get.body as Buffer)).toBe(sha256(data));

    const list = await request(app).get(`/api/v1/files/s3/${bucket}/in/`);
    expect(listingOf(list).entries).toEqual([
      { path: 'in/big.csv', location: `s3://${bucket}/in/big.csv`, size: data.length, modified: expect.any(String) },
    ]);
    const all = await request(app).get(`/api/v1/files/s3/${bucket}/`);
    expect(listingOf(all).entries.map((e) => e.location)).toContain(`s3://${bucket}/in/big.csv`);
  });

  test('a missing key or bucket is 404, a bad bucket name 400', async () => {
    const key = await request(app).get(`/api/v1/files/s3/${bucket}/absent.csv`);
    expect([key.status, problemOf(key).code]).toEqual([404, 'FILE_NOT_FOUND']);
    const nobucket = uniqueBucket('absent');
    const get = await request(app).get(`/api/v1/files/s3/${nobucket}/a.csv`);
    expect([get.status, problemOf(get).code]).toEqual([404, 'BUCKET_NOT_FOUND']);
    const put = await request(app).put(`/api/v1/files/s3/${nobucket}/a.csv`).send('a\n1\n');
    expect([put.status, problemOf(put).code]).toEqual([404, 'BUCKET_NOT_FOUND']);
    const bad = await request(app).get('/api/v1/files/s3/No_Such/a.csv');
    expect([bad.status, problemOf(bad).code]).toEqual([400, 'VALIDATION']);
  });
});
