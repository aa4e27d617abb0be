import dns, { type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import {
  addressAllowed,
  hostAllowed,
  retryDelay,
  signCallback,
  type CallbackAttempt,
  type CallbackHosts,
  type Config,
  type Job,
  type JobStore,
  type Logger,
} from '@decisum/shared';

/** Name resolution, as `dns.lookup` with `all: true` answers it; tests give their own. */
export type Resolve = (hostname: string) => Promise<LookupAddress[]>;

const systemResolve: Resolve = (hostname) => dns.promises.lookup(hostname, { all: true, verbatim: true });

/** A delivery that trying again cannot help: the receiver redirected, or the address is not allowed. */
export class DeliveryRefused extends Error {
  override name = 'DeliveryRefused';
}

export interface DeliveryOptions {
  hosts: CallbackHosts;
  secret: string;
  timeoutMs: number;
  resolve?: Resolve;
  now?: () => number;
}

/**
 * POSTs the body to the URL, signed. Resolves once the receiver answered 2xx; throws DeliveryRefused
 * when retrying cannot help, any other error when it may. The host is checked against the allowlist
 * again, its name resolved once, and the connection made to the address that was checked: a second
 * lookup (DNS rebinding) never gets the chance to point it elsewhere. Redirects are never followed.
 * Messages name the receiver's answer or the error's code, never an address.
 */
export async function deliver(url: string, body: string, options: DeliveryOptions): Promise<void> {
  const target = new URL(url);
  const host = target.hostname.replace(/^\[(.*)\]$/, '$1');
  // One deadline for the whole attempt: the name's resolution, the connection, the answer.
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const late = () => new Error(`no answer within ${options.timeoutMs} ms`);
  if (!hostAllowed(host, options.hosts)) { throw new DeliveryRefused(`callback host ${target.hostname} is not in CALLBACK_HOSTS`); }
  let addresses: LookupAddress[];
  if (isIP(host)) {
    addresses = [{ address: host, family: isIP(host) }];
  } else {
    const resolved = (options.resolve ?? systemResolve)(host).catch((err: NodeJS.ErrnoException) => {
      throw new Error(`could not resolve ${host} (${err.code ?? 'lookup failed'})`);
    });
    const timedOut = new Promise<never>((_, reject) => deadline.addEventListener('abort', () => reject(late()), { once: true }));
    addresses = await Promise.race([resolved, timedOut]);
  }
  const pinned = addresses.find((a) => addressAllowed(a.address, options.hosts));
  if (!pinned) {
    throw new DeliveryRefused(`callback host ${target.hostname} resolves to a private, loopback or otherwise non-public address that CALLBACK_HOSTS does not list`);
  }
  const t = Math.floor((options.now ?? Date.now)() / 1000);
  const headers = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'user-agent': 'decisum-callback/1',
    'decisum-signature': signCallback(options.secret, body, t),
  };
  const transport = target.protocol === 'https:' ? https : http;
  await new Promise<void>((resolve, reject) => {
    const req = transport.request(
      target,
      {
        method: 'POST',
        headers,
        agent: false,
        signal: deadline,
        // Whatever the connection asks, the answer is the address checked above.
        lookup: (_hostname, lookupOptions, callback) => {
          if ((lookupOptions as { all?: boolean }).all) { (callback as (err: null, all: LookupAddress[]) => void)(null, [pinned]); }
          else { callback(null, pinned.address, pinned.family); }
        },
      },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) { resolve(); }
        else if (status >= 300 && status < 400) { reject(new DeliveryRefused(`the receiver answered ${status}, a redirect; redirects are not followed`)); }
        else { reject(new Error(`the receiver answered ${status}`)); }
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      reject(err.name === 'AbortError' || err.name === 'TimeoutError' ? late() : new Error(`the connection failed (${err.code ?? 'error'})`));
    });
    req.end(body);
  });
}

export interface CallbackOptions {
  hosts: CallbackHosts;
  /** Unset: every callback fails, saying so (the API accepts none without it). */
  secret?: string;
  backoffMs: number;
  retryForMs: number;
  timeoutMs: number;
  /** Deliveries one process makes at once. */
  concurrency?: number;
  /** How often the queue of due callbacks is looked at when nothing wakes the dispatcher sooner. */
  pollMs?: number;
  resolve?: Resolve;
}

export function callbackOptions(config: Config): CallbackOptions {
  return { ...config.callbacks };
}

const MAX_BACKOFF_MS = 10 * 60_000;
/** A claimed delivery is due again this long after its attempt's time is up, should this process die during it. */
const LEASE_MARGIN_MS = 5000;

/**
 * Delivers the callbacks of final jobs, at least once. The queue is in Redis (a job becomes due in
 * the script that makes it final), so a callback survives the process that wrote the result: any
 * executor claims due callbacks with a lease, attempts them, and records each attempt on the job.
 * Failures are retried with backoff until `retryForMs` after the job finished.
 */
export class CallbackDispatcher {
  private readonly inFlight = new Set<Promise<void>>();
  private timer?: NodeJS.Timeout;
  private draining = false;
  private stopped = false;

  constructor(
    private readonly deps: { store: JobStore; logger: Logger },
    private readonly options: CallbackOptions,
  ) {}

  start(): void {
    this.deps.store.onCallbackDue(() => this.wake());
    this.wake();
  }

  /** Looks for due callbacks now rather than at the next poll. */
  wake(): void {
    this.schedule(0);
  }

  /** Stops claiming; deliveries under way finish (each within `timeoutMs`). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await Promise.all([...this.inFlight]);
  }

  private schedule(ms: number): void {
    if (this.stopped) { return; }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.drain(), ms);
  }

  private async drain(): Promise<void> {
    if (this.draining) { return; }
    this.draining = true;
    const { store, logger } = this.deps;
    const poll = this.options.pollMs ?? 1000;
    let next = poll;
    try {
      const free = (this.options.concurrency ?? 8) - this.inFlight.size;
      if (free > 0) {
        for (const id of await store.claimCallbacks(free, Date.now() + this.options.timeoutMs + LEASE_MARGIN_MS)) { this.track(this.attempt(id)); }
      }
      const due = await store.nextCallbackDue();
      if (due !== undefined) { next = Math.min(poll, Math.max(0, due - Date.now())); }
    } catch (err) {
      logger.warn({ err }, 'could not look for due callbacks; trying again');
    } finally {
      this.draining = false;
    }
    this.schedule(next);
  }

  private track(delivery: Promise<void>): void {
    this.inFlight.add(delivery);
    void delivery.finally(() => {
      this.inFlight.delete(delivery);
      // A slot is free: more may be due.
      this.wake();
    });
  }

  private async attempt(id: string): Promise<void> {
    const { store, logger } = this.deps;
    const log = logger.child({ jobId: id });
    try {
      const job = await store.get(id);
      if (!job?.callback) {
        await store.callbackAttempted(id, { outcome: 'failed', error: 'the job has no callback' });
        return;
      }
      const outcome = await this.send(job, job.callback.url);
      const attempts = await store.callbackAttempted(id, outcome);
      if (outcome.outcome === 'delivered') { log.info({ attempts }, 'callback delivered'); }
      else { log.warn({ attempts, outcome: outcome.outcome, error: outcome.error }, outcome.outcome === 'retry' ? 'callback failed; it will be tried again' : 'callback given up'); }
    } catch (err) {
      // Redis could not record it: the claim's lease lapses and the callback is tried again.
      log.warn({ err }, 'could not record a callback attempt');
    }
  }

  private async send(job: Job, url: string): Promise<CallbackAttempt> {
    const { secret, hosts, timeoutMs, resolve, backoffMs, retryForMs } = this.options;
    if (secret === undefined) { return { outcome: 'failed', error: 'CALLBACK_SECRET is not set on the executor' }; }
    const { callback, ...body } = job;
    try {
      await deliver(url, JSON.stringify(body), { hosts, secret, timeoutMs, resolve });
      return { outcome: 'delivered' };
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      if (err instanceof DeliveryRefused) { return { outcome: 'failed', error }; }
      const attempts = (callback?.attempts ?? 0) + 1;
      const at = Date.now() + retryDelay(attempts, { baseMs: backoffMs, maxMs: MAX_BACKOFF_MS });
      const since = Date.parse(job.finishedAt ?? job.createdAt);
      if (at - since > retryForMs) { return { outcome: 'failed', error: `${error}; given up after ${attempts} attempts` }; }
      return { outcome: 'retry', at, error };
    }
  }
}
