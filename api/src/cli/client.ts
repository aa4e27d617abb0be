import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ActiveCount, Job, JobStatus } from '@decisum/shared';
import { SseParser, type SseMessage } from './sse';

/** Exit codes a shell script can rely on. */
export const EXIT = {
  OK: 0,
  /** The job failed or was cancelled. */
  JOB_FAILED: 1,
  USAGE: 2,
  /** The service could not be reached or answered with an HTTP error. */
  UNAVAILABLE: 3,
} as const;

export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number,
    /** Set for HTTP errors; polling gives up on these at once. */
    readonly status?: number,
    /** The problem's code, for callers that tell one refusal from another (FILE_EXISTS). */
    readonly code?: string,
  ) {
    super(message);
  }
}

export function usageError(message: string): CliError {
  return new CliError(message, EXIT.USAGE);
}

export interface SubmitBody {
  file: string;
  step?: number;
  offset?: number;
  delimiter?: string;
  header?: boolean;
}

export interface UploadResult {
  location: string;
  size: number;
  modified: string;
}

export interface JobPage {
  jobs: Job[];
  nextCursor?: string;
}

export interface Download {
  /** From Content-Length; undefined when the server streams without one. */
  size?: number;
  body: Readable;
}

const REQUEST_TIMEOUT_MS = 30_000;
/** The server comments on an idle stream every 15 s by default: this much silence means the stream is dead. */
const STREAM_IDLE_MS = 45_000;
const ACCEPT = 'application/json, application/problem+json';

/** A thin client of decisum's HTTP API that turns every failure into a CliError with its exit code. */
export class ApiClient {
  private readonly base: URL;
  private readonly auth: Record<string, string>;

  /** token: sent as `Authorization: Bearer …` on every request. */
  constructor(baseUrl: string, token?: string) {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      throw usageError(`--url ${baseUrl} is not a URL (e.g. http://127.0.0.1:8080)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw usageError(`--url ${baseUrl} must be an http:// or https:// URL`);
    }
    if (!url.pathname.endsWith('/')) { url.pathname += '/'; }
    this.base = url;
    // A header value cannot hold a line break; a space would split the credentials. Never echo the token.
    if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) {
      throw usageError('the token (--token or DECISUM_TOKEN) must be one word of printable ASCII');
    }
    this.auth = token === undefined || token === '' ? {} : { authorization: `Bearer ${token}` };
  }

  submit(body: SubmitBody, idempotencyKey?: string): Promise<Job> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (idempotencyKey !== undefined) { headers['idempotency-key'] = idempotencyKey; }
    return this.json<Job>('api/v1/jobs', { method: 'POST', headers, body: JSON.stringify(body) });
  }

  /** The job; with `wait` (seconds), once it is final or when the time is up. */
  job(id: string, wait?: number): Promise<Job> {
    const path = `api/v1/jobs/${encodeURIComponent(id)}`;
    if (wait === undefined) { return this.json<Job>(path); }
    return this.json<Job>(`${path}?wait=${wait}`, {}, (wait + 10) * 1000);
  }

  /**
   * The event stream (one job's with `job`), message by message, until the server ends it; resumes
   * after `lastEventId`. Failures are CliErrors like every call's; silence for 45 s is a dead stream.
   */
  async *events(query: { job?: string }, lastEventId?: string): AsyncGenerator<SseMessage> {
    const url = new URL(`api/v1/events${query.job === undefined ? '' : `?job=${encodeURIComponent(query.job)}`}`, this.base);
    const controller = new AbortController();
    let idle = setTimeout(() => controller.abort(), STREAM_IDLE_MS);
    try {
      let res: Response;
      try {
        const resume: Record<string, string> = lastEventId === undefined ? {} : { 'last-event-id': lastEventId };
        res = await fetch(url, { headers: { accept: 'text/event-stream, application/problem+json', ...this.auth, ...resume }, signal: controller.signal });
      } catch (err) {
        throw this.unreachable(err);
      }
      if (!res.ok) { throw httpError('GET', url, res.status, res.statusText, await res.text().catch(() => '')); }
      if (!res.body || !(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
        throw new CliError(`GET ${url.pathname}: the answer is not an event stream (is ${this.base.origin} decisum?)`, EXIT.UNAVAILABLE);
      }
      const parser = new SseParser();
      const decoder = new TextDecoder();
      try {
        for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
          clearTimeout(idle);
          idle = setTimeout(() => controller.abort(), STREAM_IDLE_MS);
          yield* parser.push(decoder.decode(chunk, { stream: true }));
        }
      } catch (err) {
        throw this.unreachable(err);
      }
    } finally {
      clearTimeout(idle);
      controller.abort();
    }
  }

  cancel(id: string): Promise<Job> {
    return this.json<Job>(`api/v1/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  list(query: { status?: JobStatus; limit?: number; cursor?: string }): Promise<JobPage> {
    const params = new URLSearchParams();
    if (query.status !== undefined) { params.set('status', query.status); }
    if (query.limit !== undefined) { params.set('limit', String(query.limit)); }
    if (query.cursor !== undefined) { params.set('cursor', query.cursor); }
    const qs = params.toString();
    return this.json<JobPage>(`api/v1/jobs${qs ? `?${qs}` : ''}`);
  }

  active(): Promise<ActiveCount> {
    return this.json<ActiveCount>('api/v1/jobs/active');
  }

  /**
   * Streams body to the files API; size, when known, lets the server skip buffering. Unless replace is
   * set, sends `If-None-Match: *`, so an existing file is refused (412 FILE_EXISTS), not overwritten.
   * node:http, not fetch: on Node 20, fetch with a streamed body held most of a 280 MB file in memory
   * (380 MB RSS against 80 MB for a piped request).
   */
  upload(location: string, body: Readable, options: { size?: number; replace?: boolean } = {}): Promise<UploadResult> {
    const url = new URL(filesPath(location), this.base);
    const headers: Record<string, string> = { 'content-type': 'text/csv', accept: ACCEPT, ...this.auth };
    if (options.size !== undefined) { headers['content-length'] = String(options.size); }
    if (!options.replace) { headers['if-none-match'] = '*'; }
    return new Promise((resolve, reject) => {
      let answered = false;
      const req = this.transport(url).request(url, { method: 'PUT', headers }, (res) => {
        answered = true;
        readText(res)
          .then((text) => {
            // Answered before taking the whole body (a refused location): stop sending the rest.
            if (!req.writableFinished) { req.destroy(); }
            const status = res.statusCode ?? 0;
            if (status < 200 || status >= 300) { throw httpError('PUT', url, status, res.statusMessage ?? '', text); }
            resolve(this.parse<UploadResult>('PUT', url, text));
          })
          .catch((err: unknown) => reject(err instanceof CliError ? err : this.unreachable(err)));
      });
      // No timeout: a large upload may take long; a dead connection still ends in an error.
      pipeline(body, req).catch((err: unknown) => {
        // A server that answers early (a refused location) may cut the rest of the body: its answer counts.
        if (!answered) { reject(this.unreachable(err)); }
      });
    });
  }

  /** Opens a download from the files API; resolves once the server answered 2xx, with the body still to read. */
  download(location: string): Promise<Download> {
    const url = new URL(filesPath(location), this.base);
    return new Promise((resolve, reject) => {
      const req = this.transport(url).get(url, { headers: { accept: `*/*`, ...this.auth } }, (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          const length = res.headers['content-length'];
          resolve({ size: length === undefined ? undefined : Number(length), body: res });
          return;
        }
        readText(res)
          .then((text) => reject(httpError('GET', url, status, res.statusMessage ?? '', text)))
          .catch((err: unknown) => reject(this.unreachable(err)));
      });
      req.on('error', (err) => reject(this.unreachable(err)));
      // Idle, not total: a long download is fine as long as bytes keep coming.
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(Object.assign(new Error('idle'), { name: 'TimeoutError' })));
    });
  }

  private transport(url: URL): typeof http | typeof https {
    return url.protocol === 'https:' ? https : http;
  }

  private unreachable(err: unknown): CliError {
    return new CliError(`cannot reach ${this.base.origin}: ${describeNetworkError(err)}`, EXIT.UNAVAILABLE);
  }

  private parse<T>(method: string, url: URL, text: string): T {
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CliError(`${method} ${url.pathname}: the answer is not JSON (is ${this.base.origin} decisum?)`, EXIT.UNAVAILABLE);
    }
  }

  private async json<T>(path: string, init: RequestInit = {}, timeoutMs = REQUEST_TIMEOUT_MS): Promise<T> {
    const url = new URL(path, this.base);
    const method = init.method ?? 'GET';
    let res: Response;
    try {
      res = await fetch(url, {
        ...init,
        headers: { accept: ACCEPT, ...this.auth, ...init.headers },
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw this.unreachable(err);
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) { throw httpError(method, url, res.status, res.statusText, text); }
    return this.parse<T>(method, url, text);
  }
}

function readText(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.setEncoding('utf8').on('data', (d: string) => (text += d));
    res.on('error', reject);
    res.on('end', () => resolve(text));
  });
}

/** s3://bucket/key → files/s3/bucket/key; anything else is a path under DATA_DIR → files/local/path. */
export function filesPath(location: string): string {
  const encode = (p: string) => p.split('/').map(encodeURIComponent).join('/');
  if (location.startsWith('s3://')) { return `api/v1/files/s3/${encode(location.slice('s3://'.length))}`; }
  const local = location.startsWith('file:') ? location.slice('file:'.length) : location;
  return `api/v1/files/local/${encode(local)}`;
}

function describeNetworkError(err: unknown): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  }
  // fetch wraps the socket error in its cause; node:http throws it as is (ECONNREFUSED, ENOTFOUND, …).
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } } | undefined;
  const detail = e?.cause?.code ?? e?.cause?.message ?? e?.code ?? e?.message ?? String(err);
  return `${detail}; is the API running? Set --url or DECISUM_URL`;
}

function httpError(method: string, url: URL, status: number, statusText: string, text: string): CliError {
  let problem: { code?: unknown; detail?: unknown; title?: unknown } = {};
  try {
    problem = JSON.parse(text) as typeof problem;
  } catch {
    // Not problem+json (a proxy, another server): status line only.
  }
  const code = typeof problem.code === 'string' ? problem.code : undefined;
  const detail =
    typeof problem.detail === 'string' ? problem.detail : typeof problem.title === 'string' ? problem.title : statusText;
  const hint = status === 401 || status === 403 ? ' (set DECISUM_TOKEN, or pass --token, to a token with access)' : '';
  return new CliError(`${method} ${url.pathname} answered ${status}${code ? ` ${code}` : ''}: ${detail}${hint}`, EXIT.UNAVAILABLE, status, code);
}
