import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import type { CsvKind, GenerateCsvOptions, Job, JobStatus } from '@decisum/shared';
import { FINAL_STATUSES } from '@decisum/shared/status';
import { ApiClient, CliError, EXIT, type SubmitBody, usageError } from './client';
import { activeText, errorText, fraction, jobText, LIST_HEADER, listText, progressText, resultTable } from './output';
import { type Out, ProgressLine, RateMeter, transferText } from './progress';

export interface Io {
  stdout: Writable & Out;
  stderr: Out;
  stdin: Readable;
}

/** The options every command takes. */
export interface Global {
  url: string;
  json: boolean;
  quiet: boolean;
  token?: string;
}

const FINAL = new Set<Job['status']>(FINAL_STATUSES);
export const KINDS: readonly CsvKind[] = ['sample', 'int', 'decimal'];

export function wholeNumber(name: string, value: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) { return undefined; }
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    const range = max < Number.MAX_SAFE_INTEGER ? ` from ${min} to ${max}` : min > 0 ? ` of at least ${min}` : '';
    throw usageError(`--${name} must be a whole number${range}, not "${value}"`);
  }
  return Number(value);
}

function client(g: Global): ApiClient {
  return new ApiClient(g.url, g.token);
}

function printJson(io: Io, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A message for people, on stderr; --quiet drops it. */
function say(io: Io, g: Pick<Global, 'quiet'>, text: string): void {
  if (!g.quiet) { io.stderr.write(`${text}\n`); }
}

export interface GenerateOptions {
  rows?: string;
  cols?: string;
  kind: CsvKind;
  seed?: string;
  out?: string;
}

export async function generateCsvCommand(io: Io, o: GenerateOptions): Promise<number> {
  const rows = wholeNumber('rows', o.rows, 0);
  const cols = wholeNumber('cols', o.cols, 1);
  if (rows === undefined || cols === undefined) { throw usageError('generate-csv needs --rows N and --cols M'); }
  const seed = wholeNumber('seed', o.seed, 0);
  // Loaded here, not at the top: the shared package pulls in the storage clients, which the
  // commands that only talk HTTP should not pay for at start-up.
  const { generateCsv } = await import('@decisum/shared');
  const options: GenerateCsvOptions = { rows, cols, kind: o.kind, ...(seed === undefined ? {} : { seed }) };
  if (o.out === undefined) {
    await generateCsv(io.stdout, options);
    return EXIT.OK;
  }
  const file = fs.createWriteStream(o.out);
  await generateCsv(file, options);
  file.end();
  await finished(file);
  return EXIT.OK;
}

export interface SubmitOptions {
  step?: string;
  offset?: string;
  delimiter?: string;
  header: boolean;
  idempotencyKey?: string;
  wait?: boolean;
}

const DELIMITER_NAMES: Record<string, string> = { ',': ',', ';': ';', '|': '|', tab: '\t', '\\t': '\t', '\t': '\t', auto: 'auto' };

export async function submitCommand(io: Io, g: Global, location: string, o: SubmitOptions): Promise<number> {
  const body: SubmitBody = { file: location };
  const step = wholeNumber('step', o.step, 1);
  const offset = wholeNumber('offset', o.offset, 0);
  if (step !== undefined) { body.step = step; }
  if (offset !== undefined) { body.offset = offset; }
  if (o.delimiter !== undefined) {
    const d = DELIMITER_NAMES[o.delimiter];
    if (d === undefined) { throw usageError(`--delimiter must be one of , ; | tab auto, not ${JSON.stringify(o.delimiter)}`); }
    body.delimiter = d;
  }
  if (!o.header) { body.header = false; }
  const api = client(g);
  const job = await api.submit(body, o.idempotencyKey);
  if (!o.wait) {
    if (g.json) { printJson(io, job); }
    else { io.stdout.write(`${job.id}\n`); }
    say(io, g, `submitted job ${job.id} (${job.status}); follow it with: decisum status ${job.id} --wait`);
    return EXIT.OK;
  }
  say(io, g, `submitted job ${job.id}`);
  return follow(io, g, api, job);
}

export async function statusCommand(io: Io, g: Global, id: string, wait: boolean): Promise<number> {
  const api = client(g);
  const job = await api.job(id);
  if (wait) { return follow(io, g, api, job); }
  if (g.json) { printJson(io, job); }
  else { io.stdout.write(jobText(job)); }
  return EXIT.OK;
}

export async function cancelCommand(io: Io, g: Global, id: string): Promise<number> {
  const job = await client(g).cancel(id);
  if (g.json) { printJson(io, job); }
  else { io.stdout.write(`${job.id} ${job.status}\n`); }
  return EXIT.OK;
}

export async function activeCommand(io: Io, g: Global): Promise<number> {
  const count = await client(g).active();
  if (g.json) { printJson(io, count); }
  else { io.stdout.write(activeText(count)); }
  return EXIT.OK;
}

export interface ListOptions {
  status?: JobStatus;
  limit?: string;
  cursor?: string;
  all?: boolean;
}

export async function listCommand(io: Io, g: Global, o: ListOptions): Promise<number> {
  const limit = wholeNumber('limit', o.limit, 1, 1000) ?? 20;
  if (o.cursor !== undefined && !/^\d+$/.test(o.cursor)) {
    throw usageError(`--cursor must be the number a previous page ended with, not "${o.cursor}"`);
  }
  const api = client(g);
  const all: Job[] = [];
  let cursor = o.cursor;
  let printed = 0;
  do {
    const page = await api.list({ status: o.status, limit, cursor });
    cursor = page.nextCursor;
    if (g.json && !o.all) {
      printJson(io, page);
      printed = page.jobs.length;
      break;
    }
    if (g.json) { all.push(...page.jobs); }
    else {
      if (printed === 0 && page.jobs.length > 0) { io.stdout.write(LIST_HEADER); }
      io.stdout.write(listText(page.jobs));
    }
    printed += page.jobs.length;
  } while (o.all && cursor !== undefined);
  if (g.json && o.all) { printJson(io, { jobs: all }); }
  if (printed === 0) { say(io, g, `no jobs${o.status ? ` ${o.status}` : ''}`); }
  if (!o.all && cursor !== undefined) {
    say(io, g, `more jobs: decisum list --cursor ${cursor}${o.status ? ` --status ${o.status}` : ''}${o.limit ? ` --limit ${limit}` : ''} (or --all)`);
  }
  return EXIT.OK;
}

/** A local path without a scheme's prefix: what to call a file on this side. */
function baseName(location: string): string {
  return path.posix.basename(location.replace(/^s3:\/\/[^/]+\//, '').replace(/^file:/, ''));
}

/** Counts bytes through a stream into a progress line: on a terminal only, where it redraws in place. */
function transferMeter(io: Io, g: Global, label: string, total: number | undefined): { counter: PassThrough; done(): number; clear(): void } {
  const line = new ProgressLine(io.stderr, { plain: false });
  const meter = new RateMeter();
  const counter = new PassThrough({ highWaterMark: 1 << 20 });
  let done = 0;
  let drawnAt = 0;
  counter.on('data', (chunk: Buffer) => {
    done += chunk.length;
    const now = Date.now();
    if (g.quiet || now - drawnAt < 200) { return; }
    drawnAt = now;
    meter.add(done);
    line.update(label, total ? done / total : undefined, transferText(done, total, meter));
  });
  return { counter, done: () => done, clear: () => line.clear() };
}

export async function uploadCommand(io: Io, g: Global, file: string, target: string | undefined, o: { force?: boolean }): Promise<number> {
  const api = client(g);
  const fromStdin = file === '-';
  if (fromStdin && (target === undefined || target.endsWith('/'))) { throw usageError('upload - (stdin) needs a LOCATION with a file name'); }
  const name = path.basename(file);
  const location = target === undefined ? name : target.endsWith('/') ? `${target}${name}` : target;
  if (!location.startsWith('s3://') && path.posix.isAbsolute(location.replace(/^file:/, ''))) {
    throw usageError(`LOCATION ${location} is absolute: give s3://bucket/key or a path relative to the server's DATA_DIR`);
  }
  let body: Readable;
  let size: number | undefined;
  if (fromStdin) {
    body = io.stdin;
  } else {
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(file);
    } catch (err) {
      throw usageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    if (!stat.isFile()) { throw usageError(`${file} is not a file`); }
    size = stat.size;
    body = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  }
  const progress = transferMeter(io, g, `uploading ${name}`, size);
  let result;
  try {
    pipeline(body, progress.counter).catch((err: unknown) => progress.counter.destroy(err as Error));
    result = await api.upload(location, progress.counter, { size, replace: o.force });
  } catch (err) {
    if (err instanceof CliError && err.code === 'FILE_EXISTS') {
      throw new CliError(`${location} already exists on the server; pass --force to replace it`, EXIT.UNAVAILABLE, err.status, err.code);
    }
    throw err;
  } finally {
    progress.clear();
  }
  if (g.json) { printJson(io, result); }
  else { io.stdout.write(`${result.location}\n`); }
  say(io, g, `uploaded ${result.size} bytes to ${result.location}`);
  return EXIT.OK;
}

export async function downloadCommand(io: Io, g: Global, location: string, file: string | undefined, o: { force?: boolean }): Promise<number> {
  if (location.endsWith('/')) { throw usageError(`LOCATION ${location} names a folder: give a file`); }
  const dest = file ?? baseName(location);
  const toStdout = dest === '-';
  if (!toStdout) {
    const existing = await fs.promises.stat(dest).catch(() => undefined);
    if (existing?.isDirectory()) { throw usageError(`${dest} is a folder: give a file name`); }
    if (existing && !o.force) { throw usageError(`${dest} exists; pass --force to replace it`); }
  }
  const download = await client(g).download(location);
  const progress = transferMeter(io, g, `downloading ${baseName(location)}`, download.size);
  // Written beside the target and moved into place at the end, so a cut download never looks whole.
  const temp = toStdout ? undefined : path.join(path.dirname(dest), `.${path.basename(dest)}.${randomUUID().slice(0, 8)}.part`);
  try {
    await pipeline(download.body, progress.counter, temp === undefined ? writeTo(io.stdout) : fs.createWriteStream(temp, { flags: 'wx' }));
    if (download.size !== undefined && progress.done() !== download.size) {
      throw new CliError(`the download of ${location} ended after ${progress.done()} of ${download.size} bytes`, EXIT.UNAVAILABLE);
    }
    if (temp !== undefined) {
      if (o.force) { await fs.promises.rename(temp, dest); }
      else {
        // link refuses a name taken since the check above, where rename would replace it.
        await fs.promises.link(temp, dest).catch((err: NodeJS.ErrnoException) => {
          throw err.code === 'EEXIST' ? usageError(`${dest} appeared during the download; pass --force to replace it`) : err;
        });
        await fs.promises.unlink(temp);
      }
    }
  } catch (err) {
    if (temp !== undefined) { await fs.promises.unlink(temp).catch(() => undefined); }
    if (err instanceof CliError || (err as NodeJS.ErrnoException).code === 'EPIPE') { throw err; }
    const e = err as NodeJS.ErrnoException;
    if (e.syscall !== undefined && e.path !== undefined) { throw usageError(`cannot write ${dest}: ${e.code ?? e.message}`); }
    throw new CliError(`the download of ${location} was cut short: ${e.name === 'TimeoutError' ? 'no data for 30 s' : (e.code ?? e.message)}`, EXIT.UNAVAILABLE);
  } finally {
    progress.clear();
  }
  say(io, g, `downloaded ${progress.done()} bytes${toStdout ? '' : ` to ${dest}`}`);
  return EXIT.OK;
}

/** A pipeline sink that writes into out without ending or destroying it: a failed download must leave stdout usable. */
function writeTo(out: Writable): (source: AsyncIterable<Buffer>) => Promise<void> {
  return async (source) => {
    for await (const chunk of source) {
      if (!out.write(chunk)) { await once(out, 'drain'); }
    }
  };
}

/** Follows the job until it is final, showing progress on stderr; the exit code says how it ended. */
async function follow(io: Io, g: Global, api: ApiClient, first: Job): Promise<number> {
  const line = new ProgressLine(io.stderr, { plain: !g.quiet });
  const onSigint = () => {
    line.clear();
    io.stderr.write(`stopped waiting; job ${first.id} goes on: decisum status ${first.id}\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  try {
    const job = await watch(io, g, api, first, line);
    line.clear();
    return report(io, g, job);
  } finally {
    line.clear();
    process.removeListener('SIGINT', onSigint);
  }
}

/** The API may restart under us (a deploy, a scaled-down replica): keep reconnecting this long. */
const OUTAGE_MS = 30_000;
/** Each wait of the fallback, for an API without the event stream: it answers at once when the job is final. */
const WAIT_SECONDS = 30;

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The job's changes as they happen, from the event stream (`?job=`): it starts with the job as it is,
 * then each state change and the progress while it runs. A dropped stream is resumed with the last
 * event id. An API without the stream is waited on instead (`?wait=`), which answers when the job is final.
 */
async function watch(io: Io, g: Global, api: ApiClient, first: Job, line: ProgressLine): Promise<Job> {
  let job = first;
  let lastEventId: string | undefined;
  let stream = true;
  let failingSince: number | undefined;
  const meter = new RateMeter();
  // The final state is the report's to say.
  const show = () => {
    if (FINAL.has(job.status)) { return; }
    if (job.status === 'running') { meter.add(job.progress.bytesRead, job.progress.rows); }
    // On a terminal the line sits under "submitted job …"; in a log each line must say which job.
    if (!g.quiet) { line.update(io.stderr.isTTY ? job.status : `job ${job.id} ${job.status}`, fraction(job), progressText(job, meter)); }
  };
  show();
  while (!FINAL.has(job.status)) {
    let heard = false;
    try {
      if (stream) {
        for await (const m of api.events({ job: job.id }, lastEventId)) {
          heard = true;
          failingSince = undefined;
          if (m.id !== undefined) { lastEventId = m.id; }
          if (m.event === 'job') { job = JSON.parse(m.data) as Job; }
          else if (m.event === 'progress' && job.status === 'running') { job = { ...job, progress: (JSON.parse(m.data) as Pick<Job, 'progress'>).progress }; }
          // The history no longer reaches back to our last event: read the job as it is.
          else if (m.event === 'reset') { job = await api.job(job.id); }
          else { continue; }
          show();
          if (FINAL.has(job.status)) { break; }
        }
      } else {
        job = await api.job(job.id, WAIT_SECONDS);
        heard = true;
        failingSince = undefined;
        show();
      }
    } catch (err) {
      if (!(err instanceof CliError)) { throw err; }
      // 404 with another code than JOB_NOT_FOUND: an API from before the event stream.
      if (stream && err.status === 404 && err.code !== 'JOB_NOT_FOUND') {
        stream = false;
        continue;
      }
      // An HTTP answer (404: the job expired) is final; a network error may pass.
      if (err.status !== undefined) { throw err; }
      failingSince ??= Date.now();
      if (Date.now() - failingSince > OUTAGE_MS) { throw err; }
      line.clear();
      io.stderr.write(`${err.message}; retrying\n`);
    }
    // A stream that ended without a word, or a failure: not straight back.
    if (!heard && !FINAL.has(job.status)) { await pause(1000); }
  }
  return job;
}

function report(io: Io, g: Global, job: Job): number {
  if (g.json) { printJson(io, job); }
  if (job.status === 'succeeded') {
    const rows = job.result?.rows ?? 0;
    say(io, g, `job ${job.id} succeeded: ${rows} rows, ${job.result?.columns.length ?? 0} columns summed`);
    if (!g.json) { io.stdout.write(resultTable(job)); }
    return EXIT.OK;
  }
  io.stderr.write(`job ${job.id} ${job.status}: ${errorText(job)}\n`);
  return EXIT.JOB_FAILED;
}
