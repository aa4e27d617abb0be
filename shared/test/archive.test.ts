import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import { createResultsArchive, DurableFolder, type ResultsArchive } from '../src/archive';
import type { ResultsLocation } from '../src/config';
import { AppError } from '../src/errors';
import type { Job } from '../src/job';
import { createS3Client, S3Storage } from '../src/storage';
import { startS3, uniqueBucket, type TestS3 } from '../../test/support/s3';

/**
 * The results archive against local disk and an S3 endpoint (s3rver unless S3_ENDPOINT is set):
 * documents go in whole, come back as written, and many writers never leave a torn one.
 */

// s3rver can stall a GET of an object replaced under it: cut such a read soon.
const reads = { retries: 2, idleTimeoutMs: 1000, backoffMs: 10 };

function finishedJob(id: string = randomUUID(), sum = '87.231379072549653118'): Job {
  return {
    id,
    owner: 'local',
    status: 'succeeded',
    file: 's3://decisum/data.csv',
    options: { step: 10, offset: 0 },
    createdAt: '2026-11-30T10:00:00.000Z',
    startedAt: '2026-11-30T10:00:00.010Z',
    finishedAt: '2026-11-30T10:00:00.070Z',
    attempts: 1,
    progress: { bytesRead: 202315, bytesTotal: 202315, rows: 168 },
    result: { rows: 168, columns: [{ name: 'col0', index: 1, sum, value: Number(sum), count: 168 }] },
  };
}

interface Backend {
  archive(prefix?: string): ResultsArchive;
  /** The raw bytes of a document, as another reader (or an auditor) would find them. */
  raw(prefix: string, name: string): Promise<string>;
  /** Writes raw bytes where a document would be. */
  plant(prefix: string, name: string, text: string): Promise<void>;
  /** Every object or file under the archive. */
  names(): Promise<string[]>;
}

let s3: TestS3;
let client: S3Client;
const dirs: string[] = [];

beforeAll(async () => {
  s3 = await startS3();
  client = createS3Client(s3.config());
});

afterAll(async () => {
  client?.destroy();
  await s3?.close();
  for (const d of dirs) { fs.rmSync(d, { recursive: true, force: true }); }
});

function localBackend(): Backend {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-archive-'));
  dirs.push(root);
  const results: ResultsLocation = { kind: 'local', dir: path.join(root, 'data', '.decisum', 'results') };
  const file = (prefix: string, name: string) => path.join(results.dir, prefix, name);
  const walk = (dir: string): string[] =>
    fs.existsSync(dir)
      ? fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(path.join(dir, d.name)) : [path.join(dir, d.name)]))
      : [];
  return {
    archive: (prefix = 'decisum') => createResultsArchive({ results, prefix, reads }, new S3Storage({ client, reads })),
    raw: (prefix, name) => fs.promises.readFile(file(prefix, name), 'utf8'),
    plant: async (prefix, name, text) => {
      await fs.promises.mkdir(path.dirname(file(prefix, name)), { recursive: true });
      await fs.promises.writeFile(file(prefix, name), text);
    },
    names: () => Promise.resolve(walk(results.dir).map((f) => path.relative(results.dir, f)).sort()),
  };
}

async function s3Backend(): Promise<Backend> {
  const bucket = uniqueBucket('archive');
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const results: ResultsLocation = { kind: 's3', bucket, prefix: 'audit/results/' };
  const storage = new S3Storage({ client, reads });
  return {
    archive: (prefix = 'decisum') => createResultsArchive({ results, prefix, reads }, storage),
    raw: async (prefix, name) => {
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `audit/results/${prefix}/${name}` }));
      return out.Body!.transformToString();
    },
    plant: async (prefix, name, text) => {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: `audit/results/${prefix}/${name}`, Body: text }));
    },
    names: async () => {
      const out = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      return (out.Contents ?? []).map((o) => o.Key!.replace(/^audit\/results\//, '')).sort();
    },
  };
}

describe.each([
  ['local disk', () => Promise.resolve(localBackend())],
  ['S3', s3Backend],
])('the results archive on %s', (_label, makeBackend) => {
  let backend: Backend;
  beforeEach(async () => {
    backend = await makeBackend();
  });

  it('gives back the job it archived, as one JSON document per job under the prefix', async () => {
    const archive = backend.archive();
    expect(await archive.get(randomUUID())).toBeUndefined();
    const job = finishedJob();
    await archive.put(job);
    expect(await archive.get(job.id)).toEqual(job);

    const failed: Job = { ...finishedJob(), status: 'failed', result: undefined, error: { code: 'NON_NUMERIC', message: 'row 2', row: 2 } };
    delete failed.result;
    await archive.put(failed);
    expect(await archive.get(failed.id)).toEqual(failed);

    expect(await backend.names()).toEqual([`decisum/${job.id}.json`, `decisum/${failed.id}.json`].sort());
    const doc = JSON.parse(await backend.raw('decisum', `${job.id}.json`)) as { archivedAt: string; job: Job };
    expect(doc.job).toEqual(job);
    expect(Date.parse(doc.archivedAt)).not.toBeNaN();
    // Another tenant (prefix) sharing the folder or bucket does not see it.
    expect(await backend.archive('other-tenant').get(job.id)).toBeUndefined();
  });

  it('archives only finished jobs, and never lets an id reach a path or key', async () => {
    const archive = backend.archive();
    await expect(archive.put({ ...finishedJob(), status: 'running' })).rejects.toThrow(/only finished jobs are archived/);
    await expect(archive.put(finishedJob('../escape'))).rejects.toThrow(/cannot name an archive document/);
    for (const id of ['../decisum/x', 'a/b', '', '.', '..', 'x'.repeat(200)]) { expect(await archive.get(id)).toBeUndefined(); }
    expect(await backend.names()).toEqual([]);
  });

  it('reports a document that is not an archived job instead of serving it', async () => {
    const archive = backend.archive();
    const torn = randomUUID();
    await backend.plant('decisum', `${torn}.json`, '{"archivedAt":"2026-11-30T10:00:00Z","job":{"id":');
    const err = await archive.get(torn).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'INTERNAL', message: `the archived document of job ${torn} is not JSON` });
    const other = finishedJob();
    await backend.plant('decisum', `${torn}.json`, JSON.stringify({ archivedAt: 'now', job: other }));
    await expect(archive.get(torn)).rejects.toThrow(`the archived document of job ${torn} is not an archived job`);
  });

  it('lets many writers write the same job at once: a reader only ever sees a whole document', async () => {
    const id = randomUUID();
    // Two archives stand for two machines; each writes ten versions of the job at once.
    const writers = [backend.archive(), backend.archive()];
    const versions = Array.from({ length: 20 }, (_, i) => finishedJob(id, `${i}.5`));
    await writers[0].put(versions[0]);
    let writing = true;
    const seen = new Set<string>();
    const reader = (async () => {
      const r = backend.archive();
      while (writing) {
        const job = await r.get(id);
        expect(job).toBeDefined();
        seen.add(job!.result!.columns[0].sum);
      }
    })();
    await Promise.all(versions.map((v, i) => writers[i % 2].put(v)));
    writing = false;
    await reader;

    const last = await backend.archive().get(id);
    expect(versions.map((v) => v.result!.columns[0].sum)).toContain(last!.result!.columns[0].sum);
    for (const sum of seen) { expect(versions.some((v) => v.result!.columns[0].sum === sum)).toBe(true); }
    // No temp file or part is left beside the document.
    expect(await backend.names()).toEqual([`decisum/${id}.json`]);
  });
});

test('a local archive outside DATA_DIR: its folder is made on the first write', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-archive-'));
  dirs.push(root);
  const dir = path.join(root, 'var', 'lib', 'decisum-results');
  const archive = createResultsArchive({ results: { kind: 'local', dir }, prefix: 'p', reads }, new S3Storage({ client, reads }));
  expect(archive.where).toBe(path.join(dir, 'p'));
  const job = finishedJob();
  expect(await archive.get(job.id)).toBeUndefined();
  await archive.put(job);
  expect(fs.readdirSync(path.join(dir, 'p'))).toEqual([`${job.id}.json`]);
});

describe('DurableFolder (the local archive\'s writer)', () => {
  function folder(): { dir: string; writer: DurableFolder } {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-durable-'));
    dirs.push(root);
    const dir = path.join(root, 'results');
    return { dir, writer: new DurableFolder(dir) };
  }

  it('writes many documents at once, each whole, with no temp file left', async () => {
    const { dir, writer } = folder();
    const names = Array.from({ length: 200 }, (_, i) => `doc-${i}.json`);
    await Promise.all(names.map((n, i) => writer.write(n, Buffer.from(`{"n":${i}}\n`))));
    expect(fs.readdirSync(dir).sort()).toEqual([...names].sort());
    names.forEach((n, i) => expect(fs.readFileSync(path.join(dir, n), 'utf8')).toBe(`{"n":${i}}\n`));
  });

  it('fails only the document that could not be put in place; the rest of its batch is written', async () => {
    const { dir, writer } = folder();
    fs.mkdirSync(path.join(dir, 'taken.json'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'taken.json', 'inside'), 'a folder is not replaced by a rename');
    const results = await Promise.allSettled(['a.json', 'taken.json', 'b.json'].map((n) => writer.write(n, Buffer.from(`"${n}"`))));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: expect.stringMatching(/^(EISDIR|ENOTEMPTY|EEXIST)$/) });
    expect(fs.readdirSync(dir).sort()).toEqual(['a.json', 'b.json', 'taken.json']);
    expect(fs.readFileSync(path.join(dir, 'b.json'), 'utf8')).toBe('"b.json"');
  });

  it('fails the batch of a writer thread that dies, and writes the next batch on a new thread', async () => {
    const { dir, writer } = folder();
    await writer.write('first.json', Buffer.from('1'));
    const thread = (writer as unknown as { thread: Worker }).thread;
    // Large enough that its write and sync are still under way when the thread is stopped.
    const inFlight = writer.write('lost.json', Buffer.alloc(64 * 1024 * 1024, 'x'));
    await thread.terminate();
    await expect(inFlight).rejects.toThrow(/writer thread exited/);
    await writer.write('after.json', Buffer.from('3'));
    expect((writer as unknown as { thread: Worker }).thread).not.toBe(thread);
    expect(fs.readFileSync(path.join(dir, 'after.json'), 'utf8')).toBe('3');
  });

  it('says why it could not make its folder, and makes it on the next write', async () => {
    const { dir, writer } = folder();
    fs.writeFileSync(dir, 'a file where the folder should be');
    await expect(writer.write('a.json', Buffer.from('{}'))).rejects.toMatchObject({ code: 'EEXIST' });
    fs.rmSync(dir);
    await writer.write('a.json', Buffer.from('{"ok":true}'));
    expect(fs.readdirSync(dir)).toEqual(['a.json']);
  });
});
