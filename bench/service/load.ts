import http from 'node:http';
import { isFinal } from '@decisum/shared';

/**
 * The load generator, the same for decisum and the BullMQ anchor: both answer
 * `POST /api/v1/jobs` (202 with `{id}`), `GET /api/v1/jobs/{id}` (`{status}`) and
 * `GET /api/v1/jobs/active` (`{active}`).
 */

export interface Answer {
  status: number;
  body: string;
}

/** node:http with keep-alive: lighter on this process than fetch, so more of the 2 cores go to the servers. */
export class HttpClient {
  private readonly agent: http.Agent;
  /** Requests sent, by method. */
  readonly sent = { GET: 0, POST: 0 };

  constructor(maxSockets: number) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  request(method: 'GET' | 'POST', url: string, body?: string): Promise<Answer> {
    this.sent[method]++;
    return new Promise((resolve, reject) => {
      const req = http.request(
        url,
        {
          method,
          agent: this.agent,
          headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  async json<T>(method: 'GET' | 'POST', url: string, body?: string): Promise<{ status: number; body: T }> {
    const a = await this.request(method, url, body);
    return { status: a.status, body: JSON.parse(a.body) as T };
  }

  close(): void {
    this.agent.destroy();
  }
}

export const JOBS = '/api/v1/jobs';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Nearest-rank percentile of ascending numbers. */
export function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN;
}

export interface LoadOptions {
  jobs: number;
  clients: number;
  /** The POST body of every job. */
  body: string;
  /** Called every few seconds while jobs drain. */
  progress?: (line: string) => void;
}

export interface LoadResult {
  accepted: number;
  /** Answers other than 202 (each retried after 50 ms); nothing else is counted. */
  refused: number;
  lastRefusal?: string;
  ids: string[];
  /** From the first POST to the last 202. */
  submitSeconds: number;
  /** From the first POST until `active` answered 0. */
  totalSeconds: number;
  /** Round trip of every accepted POST, ascending. */
  submitMs: number[];
}

/**
 * `clients` loops, each posting the next job as soon as its last one was answered, until `jobs`
 * were accepted; client c talks to urls[c % urls.length]. Then polls `active` until it is 0.
 */
export async function runLoad(client: HttpClient, urls: string[], o: LoadOptions): Promise<LoadResult> {
  const ids: string[] = [];
  const submitMs: number[] = [];
  let claimed = 0;
  let refused = 0;
  let lastRefusal: string | undefined;
  const t0 = performance.now();
  let lastAccepted = t0;

  const loop = async (c: number) => {
    const url = `${urls[c % urls.length]}${JOBS}`;
    while (claimed < o.jobs) {
      claimed++;
      for (;;) {
        const started = performance.now();
        const a = await client.request('POST', url, o.body).catch((err: Error) => ({ status: 0, body: err.message }));
        if (a.status === 202) {
          lastAccepted = performance.now();
          submitMs.push(lastAccepted - started);
          ids.push((JSON.parse(a.body) as { id: string }).id);
          break;
        }
        refused++;
        lastRefusal = `${a.status} ${a.body.slice(0, 300)}`;
        if (refused > Math.max(100, o.jobs / 10)) { throw new Error(`${refused} submissions refused; the last: ${lastRefusal}`); }
        await sleep(50);
      }
    }
  };
  await Promise.all(Array.from({ length: o.clients }, (_, c) => loop(c)));

  const deadline = Date.now() + Math.max(300_000, o.jobs * 100);
  let lastReport = Date.now();
  for (;;) {
    const { body } = await client.json<{ active: number }>('GET', `${urls[0]}${JOBS}/active`);
    if (body.active === 0) { break; }
    if (Date.now() > deadline) { throw new Error(`${body.active} jobs still active ${(Date.now() - lastAccepted) / 1000} s after the last submission`); }
    if (Date.now() - lastReport > 5000) {
      o.progress?.(`${body.active} of ${ids.length} jobs still active`);
      lastReport = Date.now();
    }
    await sleep(20);
  }
  const totalSeconds = (performance.now() - t0) / 1000;
  return {
    accepted: ids.length,
    refused,
    lastRefusal,
    ids,
    submitSeconds: (lastAccepted - t0) / 1000,
    totalSeconds,
    submitMs: submitMs.sort((a, b) => a - b),
  };
}

/** What the final GET of a job says; the times are ISO strings, as decisum writes them. */
export interface FinalJob {
  status: string;
  createdAt?: string;
  startedAt?: string;
  finishedAt?: string;
}

/**
 * How a client learns that a job ended: resolves with the job once its status is final. A
 * `GET …?wait=` long poll (longPollUntilFinal, the default) or polling (pollUntilFinal).
 */
export type Waiter = (client: HttpClient, jobUrl: string) => Promise<FinalJob>;

/** GET the job until its status is final, pausing intervalMs between answers (0: at once). */
export function pollUntilFinal(intervalMs: number): Waiter {
  return async (client, jobUrl) => {
    for (;;) {
      const { status, body } = await client.json<FinalJob>('GET', jobUrl);
      if (status !== 200) { throw new Error(`GET ${jobUrl} answered ${status}`); }
      if (isFinal(body.status)) { return body; }
      await (intervalMs > 0 ? sleep(intervalMs) : new Promise((r) => setImmediate(r)));
    }
  };
}

/** GET the job with `?wait=seconds` until its status is final: the server answers once it is, no polling. */
export function longPollUntilFinal(seconds: number): Waiter {
  return async (client, jobUrl) => {
    for (;;) {
      const { status, body } = await client.json<FinalJob>('GET', `${jobUrl}?wait=${seconds}`);
      if (status !== 200) { throw new Error(`GET ${jobUrl}?wait=${seconds} answered ${status}`); }
      if (isFinal(body.status)) { return body; }
    }
  };
}

export interface IdleOptions {
  jobs: number;
  /** Jobs run first and not counted: JIT, connection pools, the first file open. */
  warmup: number;
  body: string;
  wait: Waiter;
}

/** One job's way, in ms from the client's POST: what the client saw, and the times the job record holds. */
export interface Timeline {
  /** The POST's round trip. */
  answered: number;
  /** The record's createdAt, startedAt (claimed by an executor) and finishedAt. */
  created: number;
  started: number;
  finished: number;
  /** The client saw the final status. */
  seen: number;
}

const TIMELINE_STEPS: (keyof Timeline)[] = ['created', 'answered', 'started', 'finished', 'seen'];

export interface IdleResult {
  /** Submission to a final status as the client saw it, ascending. */
  totalMs: number[];
  timelines: Timeline[];
}

/** One job at a time: POST, then wait for its final status; job i goes to urls[i % urls.length]. */
export async function idleLatency(client: HttpClient, urls: string[], o: IdleOptions): Promise<IdleResult> {
  const totalMs: number[] = [];
  const timelines: Timeline[] = [];
  // Epoch ms with the monotonic clock's precision, to set beside the record's times.
  const epoch = () => performance.timeOrigin + performance.now();
  for (let i = 0; i < o.warmup + o.jobs; i++) {
    const base = urls[i % urls.length];
    const t0 = epoch();
    const a = await client.request('POST', `${base}${JOBS}`, o.body);
    const t1 = epoch();
    if (a.status !== 202) { throw new Error(`POST ${JOBS} answered ${a.status}: ${a.body.slice(0, 300)}`); }
    const { id } = JSON.parse(a.body) as { id: string };
    const job = await o.wait(client, `${base}${JOBS}/${id}`);
    const t2 = epoch();
    if (job.status !== 'succeeded') { throw new Error(`job ${id} ended ${job.status}`); }
    if (i < o.warmup) { continue; }
    totalMs.push(t2 - t0);
    const at = (iso?: string) => (iso ? Date.parse(iso) - t0 : NaN);
    timelines.push({ answered: t1 - t0, created: at(job.createdAt), started: at(job.startedAt), finished: at(job.finishedAt), seen: t2 - t0 });
  }
  return { totalMs: totalMs.sort((a, b) => a - b), timelines };
}

/** The median of each step's time since the one before it (ms). */
export function medianSteps(timelines: Timeline[]): { step: keyof Timeline; ms: number }[] {
  const order = [...TIMELINE_STEPS].sort((a, b) => median(timelines.map((t) => t[a])) - median(timelines.map((t) => t[b])));
  return order.map((step, i) => ({
    step,
    ms: median(timelines.map((t) => t[step] - (i === 0 ? 0 : t[order[i - 1]]))),
  }));
}

function median(values: number[]): number {
  return percentile(values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b), 50);
}
