import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ActiveCount, Job } from '@decisum/shared';

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

const REQUEST_TIMEOUT_MS = 30_000;

/** A thin client of decisum's HTTP API that turns every failure into a CliError with its exit code. */
export class ApiClient {
  private readonly base: URL;

  constructor(baseUrl: string) {
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
  }

  submit(body: SubmitBody, idempotencyKey?: string): Promise<Job> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (idempotencyKey !== undefined) { headers['idempotency-key'] = idempotencyKey; }
    return this.json<Job>('api/v1/jobs', { method: 'POST', headers, body: JSON.stringify(body) });
  }

  job(id: string): Promise<Job> {
    return this.json<Job>(`api/v1/jobs/${encodeURIComponent(id)}`);
  }

  active(): Promise<ActiveCount> {
    return this.json<ActiveCount>('api/v1/jobs/active');
  }

  /**
   * Streams body to the files API; size, when known, lets the server skip buffering. node:http, not
   * fetch: on Node 20, fetch with a streamed body held most of a 280 MB file in memory (380 MB RSS
   * against 80 MB for a piped request).
   */
  upload(location: string, body: Readable, size?: number): Promise<UploadResult> {
    const url = new URL(filesPath(location), this.base);
    const headers: Record<string, string> = { 'content-type': 'text/csv', accept: 'application/json, application/problem+json' };
    if (size !== undefined) { headers['content-length'] = String(size); }
    return new Promise((resolve, reject) => {
      let answered = false;
      const req = (url.protocol === 'https:' ? https : http).request(url, { method: 'PUT', headers }, (res) => {
        answered = true;
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('error', (err) => reject(this.unreachable(err)));
        res.on('end', () => {
          // Answered before taking the whole body (a refused location): stop sending the rest.
          if (!req.writableFinished) { req.destroy(); }
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            reject(new CliError(describeHttpError('PUT', url, status, res.statusMessage ?? '', text), EXIT.UNAVAILABLE, status));
            return;
          }
          try {
            resolve(JSON.parse(text) as UploadResult);
          } catch {
            reject(new CliError(`PUT ${url.pathname}: the answer is not JSON (is ${this.base.origin} decisum?)`, EXIT.UNAVAILABLE));
          }
        });
      });
      // No timeout: a large upload may take long; a dead connection still ends in an error.
      pipeline(body, req).catch((err: unknown) => {
        // A server that answers early (a refused location) may cut the rest of the body: its answer counts.
        if (!answered) { reject(this.unreachable(err)); }
      });
    });
  }

  private unreachable(err: unknown): CliError {
    return new CliError(`cannot reach ${this.base.origin}: ${describeNetworkError(err)}`, EXIT.UNAVAILABLE);
  }

  private async json<T>(path: string, init: RequestInit = {}, timeoutMs: number | null = REQUEST_TIMEOUT_MS): Promise<T> {
    const url = new URL(path, this.base);
    let res: Response;
    try {
      res = await fetch(url, {
        ...init,
        headers: { accept: 'application/json, application/problem+json', ...init.headers },
        signal: timeoutMs === null ? undefined : AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw this.unreachable(err);
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) {
      throw new CliError(describeHttpError(init.method ?? 'GET', url, res.status, res.statusText, text), EXIT.UNAVAILABLE, res.status);
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CliError(`${init.method ?? 'GET'} ${url.pathname}: the answer is not JSON (is ${this.base.origin} decisum?)`, EXIT.UNAVAILABLE);
    }
  }
}

/** s3://bucket/key → files/s3/bucket/key; anything else is a path under DATA_DIR → files/local/path. */
export function filesPath(location: string): string {
  const encode = (p: string) => p.split('/').map(encodeURIComponent).join('/');
  if (location.startsWith('s3://')) { return `api/v1/files/s3/${encode(location.slice('s3://'.length)) }`; }
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

function describeHttpError(method: string, url: URL, status: number, statusText: string, text: string): string {
  let problem: { code?: unknown; detail?: unknown; title?: unknown } = {};
  try {
    problem = JSON.parse(text) as typeof problem;
  } catch {
    // Not problem+json (a proxy, another server): status line only.
  }
  const code = typeof problem.code === 'string' ? ` ${problem.code}` : '';
  const detail =
    typeof problem.detail === 'string' ? problem.detail : typeof problem.title === 'string' ? problem.title : statusText;
  return `${method} ${url.pathname} answered ${status}${code}: ${detail}`;
}
