import fs from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { CsvKind, GenerateCsvOptions, Job } from '@decisum/shared';
import { FINAL_STATUSES } from '@decisum/shared/status';
import { ApiClient, CliError, EXIT, type SubmitBody, usageError } from './client';
import { activeText, errorText, jobText, type Out, ProgressBar, resultTable } from './output';

export interface Io {
  stdout: Writable & Out;
  stderr: Out;
  stdin: Readable;
}

export interface Global {
  url: string;
  json: boolean;
}

const FINAL = new Set<Job['status']>(FINAL_STATUSES);
const KINDS: readonly CsvKind[] = ['sample', 'int', 'decimal'];

export function wholeNumber(name: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) { return undefined; }
  if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
    throw usageError(`--${name} must be a whole number${min > 0 ? ` of at least ${min}` : ''}, not "${value}"`);
  }
  return Number(value);
}

function printJson(io: Io, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export interface GenerateOptions {
  rows?: string;
  cols?: string;
  kind?: string;
  seed?: string;
  out?: string;
}

export async function generateCsvCommand(io: Io, o: GenerateOptions): Promise<number> {
  const rows = wholeNumber('rows', o.rows, 0);
  const cols = wholeNumber('cols', o.cols, 1);
  if (rows === undefined || cols === undefined) { throw usageError('generate-csv needs --rows N and --cols M'); }
  const kind = o.kind ?? 'sample';
  if (!(KINDS as readonly string[]).includes(kind)) { throw usageError(`--kind must be one of ${KINDS.join(', ') }, not "${kind}"`); }
  const seed = wholeNumber('seed', o.seed, 0);
  // Loaded here, not at the top: the shared package pulls in the storage clients, which the
  // commands that only talk HTTP should not pay for at start-up.
  const { generateCsv } = await import('@decisum/shared');
  const options: GenerateCsvOptions = { rows, cols, kind: kind as CsvKind, ...(seed === undefined ? {} : { seed }) };
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
  'no-header'?: boolean;
  'idempotency-key'?: string;
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
    if (d === undefined) { throw usageError(`--delimiter must be one of , ; | tab auto, not ${JSON.stringify(o.delimiter) }`); }
    body.delimiter = d;
  }
  if (o['no-header']) { body.header = false; }
  const client = new ApiClient(g.url);
  const job = await client.submit(body, o['idempotency-key']);
  if (!o.wait) {
    if (g.json) { printJson(io, job); }
    else { io.stdout.write(`${job.id}\n`); }
    io.stderr.write(`submitted job ${job.id} (${job.status}); follow it with: decisum status ${job.id} --wait\n`);
    return EXIT.OK;
  }
  io.stderr.write(`submitted job ${job.id}\n`);
  return follow(io, g, client, job);
}

export async function statusCommand(io: Io, g: Global, id: string, wait: boolean): Promise<number> {
  const client = new ApiClient(g.url);
  const job = await client.job(id);
  if (wait) { return follow(io, g, client, job); }
  if (g.json) { printJson(io, job); }
  else { io.stdout.write(jobText(job)); }
  return EXIT.OK;
}

export async function activeCommand(io: Io, g: Global): Promise<number> {
  const count = await new ApiClient(g.url).active();
  if (g.json) { printJson(io, count); }
  else { io.stdout.write(activeText(count)); }
  return EXIT.OK;
}

export async function uploadCommand(io: Io, g: Global, file: string, target: string | undefined): Promise<number> {
  const client = new ApiClient(g.url);
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
  const result = await client.upload(location, body, size);
  if (g.json) { printJson(io, result); }
  else { io.stdout.write(`${result.location}\n`); }
  io.stderr.write(`uploaded ${result.size} bytes to ${result.location}\n`);
  return EXIT.OK;
}

/** Polls the job until it is final, drawing progress; the exit code says how it ended. */
async function follow(io: Io, g: Global, client: ApiClient, first: Job): Promise<number> {
  const bar = new ProgressBar(io.stderr);
  const onSigint = () => {
    bar.clear();
    io.stderr.write(`stopped waiting; job ${first.id} goes on: decisum status ${first.id}\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  try {
    const job = await poll(io, client, first, bar);
    bar.clear();
    return report(io, g, job);
  } finally {
    bar.clear();
    process.removeListener('SIGINT', onSigint);
  }
}

const POLL_MIN_MS = 200;
const POLL_MAX_MS = 1000;
/** The API may restart under us (a deploy, a scaled-down replica): keep polling this long. */
const OUTAGE_MS = 30_000;

async function poll(io: Io, client: ApiClient, first: Job, bar: ProgressBar): Promise<Job> {
  let job = first;
  let delay = POLL_MIN_MS;
  let failingSince: number | undefined;
  while (!FINAL.has(job.status)) {
    bar.update(job);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(POLL_MAX_MS, delay * 1.5);
    try {
      job = await client.job(job.id);
      failingSince = undefined;
    } catch (err) {
      // An HTTP answer (404: the job expired) is final; a network error may pass.
      if (!(err instanceof CliError) || err.status !== undefined) { throw err; }
      failingSince ??= Date.now();
      if (Date.now() - failingSince > OUTAGE_MS) { throw err; }
      bar.clear();
      io.stderr.write(`${err.message}; retrying\n`);
    }
  }
  return job;
}

function report(io: Io, g: Global, job: Job): number {
  if (g.json) { printJson(io, job); }
  if (job.status === 'succeeded') {
    const rows = job.result?.rows ?? 0;
    io.stderr.write(`job ${job.id} succeeded: ${rows} rows, ${job.result?.columns.length ?? 0} columns summed\n`);
    if (!g.json) { io.stdout.write(resultTable(job)); }
    return EXIT.OK;
  }
  io.stderr.write(`job ${job.id} ${job.status}: ${errorText(job)}\n`);
  return EXIT.JOB_FAILED;
}
