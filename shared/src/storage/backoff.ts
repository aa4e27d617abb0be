import { AppError } from '../errors';
import type { ReadOptions } from './types';

/** How hard a read fights for its bytes; `config.reads` has this shape. */
export interface ReadPolicy {
  /** Failed attempts allowed in a row; progress resets the count. */
  retries: number;
  /** A read that yields no byte for this long is cut and resumed. */
  idleTimeoutMs: number;
  /** The first backoff; it doubles per failed attempt, with full jitter. */
  backoffMs: number;
  /** Cap on a single backoff; 30 s when absent. */
  maxBackoffMs?: number;
}

/** READ_RETRIES, READ_IDLE_TIMEOUT_MS and READ_BACKOFF_MS when unset. */
export const DEFAULT_READ_POLICY: ReadPolicy = { retries: 8, idleTimeoutMs: 30_000, backoffMs: 200 };

/** The least a throttled request waits before it is sent again (S3 asks for seconds, not milliseconds). */
export const THROTTLE_BACKOFF_MS = 1000;

/**
 * Error codes that a retry from the same offset can cure: a flaky disk or network file system, a
 * full file table, a dropped or refused connection. One list for local files and S3 alike.
 */
const TRANSIENT_ERRNO = new Set([
  'EIO',
  'EAGAIN',
  'EWOULDBLOCK',
  'EBUSY',
  'EINTR',
  'ETIMEDOUT',
  'ESTALE',
  'EMFILE',
  'ENFILE',
  'ENOMEM',
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
]);

export function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

export function isTransientErrno(err: unknown): boolean {
  return TRANSIENT_ERRNO.has(errnoOf(err) ?? '');
}

/** Exponential backoff with full jitter: uniform in [0, min(cap, base·2^(attempt-1))]. */
export function backoffDelay(attempt: number, policy: ReadPolicy, random: () => number = Math.random): number {
  const cap = policy.maxBackoffMs ?? 30_000;
  const ceiling = Math.min(cap, policy.backoffMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/**
 * The wait after a throttling answer: at least what Retry-After asks, and at least half of a ceiling
 * that starts at THROTTLE_BACKOFF_MS, so a throttled store is never hit again at once.
 */
export function throttleDelay(attempt: number, policy: ReadPolicy, retryAfterMs = 0, random: () => number = Math.random): number {
  const cap = Math.max(policy.maxBackoffMs ?? 30_000, THROTTLE_BACKOFF_MS);
  const ceiling = Math.min(cap, Math.max(policy.backoffMs, THROTTLE_BACKOFF_MS) * 2 ** Math.max(0, attempt - 1));
  return Math.max(retryAfterMs, Math.floor(ceiling / 2 + (random() * ceiling) / 2));
}

/**
 * Before the attempt-th try in a row after a fault at offset: gives up with STORAGE_UNAVAILABLE past
 * policy.retries, else tells onRetry and sleeps (CANCELLED if the signal aborts meanwhile).
 */
export async function pauseBeforeRetry(
  where: string,
  attempt: number,
  offset: number,
  error: unknown,
  policy: ReadPolicy,
  { signal, onRetry }: ReadOptions,
  delayMs: number = backoffDelay(attempt, policy),
): Promise<void> {
  if (attempt > policy.retries) { throw storageUnavailable(where, attempt, error); }
  onRetry?.({ attempt, offset, delayMs, error });
  await sleep(delayMs, signal);
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** pauseBeforeRetry for a worker thread that reads synchronously: it blocks the thread, which has nothing else to do. */
export function pauseBeforeRetrySync(
  where: string,
  attempt: number,
  offset: number,
  error: unknown,
  policy: ReadPolicy,
  onRetry?: ReadOptions['onRetry'],
): void {
  if (attempt > policy.retries) { throw storageUnavailable(where, attempt, error); }
  const delayMs = backoffDelay(attempt, policy);
  onRetry?.({ attempt, offset, delayMs, error });
  Atomics.wait(sleeper, 0, 0, delayMs);
}

export function cancelled(signal: AbortSignal): AppError {
  return new AppError('CANCELLED', 'the read was cancelled', {
    status: 499,
    expected: true,
    permanent: true,
    cause: signal.reason,
  });
}

export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) { throw cancelled(signal); }
}

/** Resolves after ms, or rejects with CANCELLED as soon as the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(cancelled(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelled(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export class IdleTimeoutError extends Error {
  override name = 'IdleTimeoutError';
  constructor(ms: number) {
    super(`no bytes arrived for ${ms} ms`);
  }
}

/**
 * Awaits p, but rejects with IdleTimeoutError after ms. The caller must tear down whatever p waits on;
 * p's own late rejection is swallowed.
 */
export function withIdleTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new IdleTimeoutError(ms)), ms);
  });
  p.catch(() => undefined);
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export function storageUnavailable(what: string, attempts: number, cause: unknown): AppError {
  // An errno's message names a server path or address; its code says enough.
  const reason = errnoOf(cause) ?? (cause instanceof Error ? cause.message : String(cause));
  return new AppError('STORAGE_UNAVAILABLE', `${what}: storage unavailable after ${attempts} attempts (${reason})`, {
    status: 503,
    expected: false,
    permanent: false,
    cause,
  });
}

export function fileNotFound(where: string, cause?: unknown): AppError {
  return new AppError('FILE_NOT_FOUND', `${where} does not exist`, { status: 404, permanent: true, cause });
}

export function accessDenied(where: string, cause?: unknown): AppError {
  return new AppError('FILE_ACCESS_DENIED', `${where}: access denied`, { status: 403, permanent: true, cause });
}

/** An exclusive write (If-None-Match: *) found the name taken. */
export function fileExists(where: string): AppError {
  return new AppError('FILE_EXISTS', `${where} already exists`, { status: 412 });
}

export function fileChanged(where: string, why: string, cause?: unknown): AppError {
  return new AppError('FILE_CHANGED', `${where} changed while it was being read (${why})`, {
    status: 409,
    permanent: true,
    cause,
  });
}
