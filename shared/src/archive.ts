import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { z } from 'zod';
import type { Config, ResultsLocation } from './config';
import { AppError } from './errors';
import { JobSchema, type Job } from './job';
import { isFinal } from './status';
import type { Location } from './location';
import { LocalStorage, TEMP_MARK } from './storage/local';
import type { Storage } from './storage/types';

/**
 * The results archive: one small JSON document per finished job, `{prefix}/{id}.json` under
 * RESULTS_LOCATION, written after the job's outcome is in Redis. It outlives Redis (read when Redis
 * has no record of a job) and is the audit log of every result.
 *
 * Each document is written whole or not at all — a temp file renamed into place on disk, one PUT on
 * S3 — so any number of writers on any number of machines may write, even the same job twice (a job
 * re-run after Redis lost it): a reader sees one whole document, the last one written.
 */

export const ArchivedJobSchema = z.object({
  archivedAt: z.string(),
  job: JobSchema,
});
export type ArchivedJob = z.infer<typeof ArchivedJobSchema>;

/** A result of 10⁶ columns is about 100 MB; nothing decisum writes comes near this. */
const MAX_DOCUMENT_BYTES = 256 * 1024 * 1024;
/** Job ids are UUIDs; anything else cannot name a document, and never reaches a path or key. */
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

export interface ResultsArchive {
  /** Archives a finished job, replacing an earlier document of the same id. */
  put(job: Job): Promise<void>;
  /** The archived job, or undefined when none was archived under that id. */
  get(id: string): Promise<Job | undefined>;
  /** Where the documents go, for logs: the folder or s3://bucket/prefix/. */
  readonly where: string;
}

/** Writes one whole document under a name; a reader never sees part of it. */
export type WriteDocument = (name: string, body: Buffer) => Promise<void>;

export class StorageArchive implements ResultsArchive {
  constructor(
    private readonly storage: Storage,
    private readonly locate: (name: string) => Location,
    readonly where: string,
    /** How a document is written; one write through the storage (an S3 PUT) when absent. */
    private readonly writeDocument: WriteDocument = (name, body) =>
      storage.write(locate(name), Readable.from([body]), { contentLength: body.length }).then(() => undefined),
    private readonly now: () => Date = () => new Date(),
  ) {}

  async put(job: Job): Promise<void> {
    if (!isFinal(job.status)) {
      throw new AppError('INTERNAL', `job ${job.id} is ${job.status}: only finished jobs are archived`);
    }
    if (!SAFE_ID.test(job.id)) { throw new AppError('INTERNAL', `job id ${JSON.stringify(job.id)} cannot name an archive document`); }
    const document: ArchivedJob = { archivedAt: this.now().toISOString(), job };
    const body = Buffer.from(`${JSON.stringify(document)}\n`);
    await this.writeDocument(`${job.id}.json`, body);
  }

  async get(id: string): Promise<Job | undefined> {
    if (!SAFE_ID.test(id)) { return undefined; }
    let text: string | undefined;
    for (let attempt = 1; text === undefined; attempt++) {
      try {
        const { body } = await this.storage.download(this.locate(`${id}.json`));
        text = await readAll(body, id);
      } catch (err) {
        if (err instanceof AppError && err.code === 'FILE_NOT_FOUND') { return undefined; }
        // Another writer replaced the document mid-read: the new one is whole too, read it.
        if (err instanceof AppError && err.code === 'FILE_CHANGED' && attempt < 5) { continue; }
        throw err;
      }
    }
    let parsed;
    try {
      parsed = ArchivedJobSchema.safeParse(JSON.parse(text));
    } catch (err) {
      throw new AppError('INTERNAL', `the archived document of job ${id} is not JSON`, { cause: err });
    }
    if (!parsed.success || parsed.data.job.id !== id) {
      throw new AppError('INTERNAL', `the archived document of job ${id} is not an archived job`, { cause: parsed.error });
    }
    return parsed.data.job;
  }
}

async function readAll(body: Readable, id: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_DOCUMENT_BYTES) {
      body.destroy();
      throw new AppError('INTERNAL', `the archived document of job ${id} is over ${MAX_DOCUMENT_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The archive RESULTS_LOCATION names, under a folder per DECISUM_PREFIX so tenants sharing a folder or
 * bucket keep apart. An S3 archive writes through the process's S3 storage; a local one has a
 * LocalStorage of its own rooted at the folder (which may lie outside DATA_DIR).
 */
export function createResultsArchive(
  config: Pick<Config, 'results' | 'prefix' | 'reads'>,
  s3: Storage,
): ResultsArchive {
  const results: ResultsLocation = config.results;
  if (results.kind === 's3') {
    const base = `${results.prefix}${config.prefix}/`;
    return new StorageArchive(
      s3,
      (name) => ({ kind: 's3', bucket: results.bucket, key: `${base}${name}` }),
      `s3://${results.bucket}/${base}`,
    );
  }
  const local = new LocalStorage({ dataDir: results.dir, reads: config.reads });
  const folder = new DurableFolder(path.join(results.dir, config.prefix));
  return new StorageArchive(local, (name) => ({ kind: 'local', path: `${config.prefix}/${name}` }), folder.dir, (name, body) =>
    folder.write(name, body),
  );
}

/**
 * The writer thread's code (plain JS, so it runs the same from the build and under ts-jest). For each
 * batch: every document is written to its temp file, fsynced and renamed into place, then one
 * folder fsync makes all the renames durable. Answers the batch with one error (or null) a document.
 */
const WRITER_SOURCE = `
const fs = require('node:fs');
const path = require('node:path');
const { parentPort } = require('node:worker_threads');
const failure = (err) => ({ message: err && err.message ? err.message : String(err), code: err && err.code });
function writeOne(dir, doc) {
  const fd = fs.openSync(doc.temp, 'wx', 0o644);
  try {
    for (let done = 0; done < doc.body.length; ) { done += fs.writeSync(fd, doc.body, done); }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(doc.temp, path.join(dir, doc.name));
}
parentPort.on('message', ({ dir, docs }) => {
  let errors;
  try {
    fs.mkdirSync(dir, { recursive: true });
    errors = docs.map((doc) => {
      try {
        writeOne(dir, doc);
        return null;
      } catch (err) {
        try { fs.unlinkSync(doc.temp); } catch {}
        return failure(err);
      }
    });
    if (errors.some((e) => e === null)) {
      const fd = fs.openSync(dir, 'r');
      try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
    }
  } catch (err) {
    errors = docs.map(() => failure(err));
  }
  parentPort.postMessage(errors);
});
`;

interface Pending {
  name: string;
  body: Buffer;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** A document's failure as the writer thread sends it (an Error does not cross with its code). */
interface WriteFailure {
  message: string;
  code?: string;
}

function toError(f: WriteFailure): Error {
  return Object.assign(new Error(f.message), f.code === undefined ? {} : { code: f.code });
}

/**
 * Documents in one folder, each durable when write resolves: a temp file written and fsynced,
 * renamed into place, then the folder fsynced so the rename survives a power cut. The file calls run
 * synchronously on a thread of the folder's own, a batch at a time: documents that come while a
 * batch is written go in the next, whose one folder sync covers them all (a group commit). Through
 * the thread pool the same calls cost the executor 0.3–0.6 ms more CPU a small job
 * (docs/PERF-JOBPATH.md).
 */
export class DurableFolder {
  private thread?: Worker;
  private waiting: Pending[] = [];
  private writing?: Pending[];

  constructor(readonly dir: string) {}

  write(name: string, body: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ name, body, resolve, reject });
      this.next();
    });
  }

  /** Sends the documents waiting as one batch, unless a batch is being written. */
  private next(): void {
    if (this.writing || this.waiting.length === 0) { return; }
    const batch = (this.writing = this.waiting);
    this.waiting = [];
    const thread = this.writer();
    thread.ref(); // a batch in flight keeps the process alive; an idle writer does not
    thread.postMessage({
      dir: this.dir,
      // Named as an upload's temp file is, so a listing of a folder under DATA_DIR never shows it.
      docs: batch.map((d) => ({ name: d.name, temp: path.join(this.dir, `${TEMP_MARK}${randomUUID()}`), body: d.body })),
    });
  }

  private writer(): Worker {
    if (this.thread) { return this.thread; }
    const thread = new Worker(WRITER_SOURCE, { eval: true });
    thread.on('message', (errors: (WriteFailure | null)[]) => this.settle((d, i) => {
      const failed = errors[i];
      if (failed) { d.reject(toError(failed)); } else { d.resolve(); }
    }));
    // A thread that failed (it should not) fails its batch; the next batch starts a new one. Its
    // 'exit' after an 'error' finds it replaced and leaves the new thread's batch alone.
    const lost = (err: Error) => {
      if (this.thread !== thread) { return; }
      this.thread = undefined;
      this.settle((d) => d.reject(err));
    };
    thread.on('error', lost);
    thread.on('exit', (code) => lost(new Error(`the archive's writer thread exited (${code})`)));
    return (this.thread = thread);
  }

  private settle(each: (d: Pending, i: number) => void): void {
    const batch = this.writing;
    if (!batch) { return; }
    this.writing = undefined;
    this.thread?.unref();
    batch.forEach(each);
    this.next();
  }
}
