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

/** Exponential backoff with full jitter: uniform in [0, min(cap, base·2^(attempt-1))]. */
export function backoffDelay(attempt: number, policy: ReadPolicy, random: () => number = Math.random): number {
  const cap = policy.maxBackoffMs ?? 30_000;
  const ceiling = Math.min(cap, policy.backoffMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/**
 * Before the attempt-th try in a row after a fault at offset: gives up with STORAGE_UNAVAILABLE past
 * policy.retries, else tells onRetry and sleeps the backoff (CANCELLED if the signal aborts meanwhile).
 */
export async function pauseBeforeRetry(
  where: string,
  attempt: number,
  offset: number,
  error: unknown,
  policy: ReadPolicy,
  { signal, onRetry }: ReadOptions,
): Promise<void> {
  if (attempt > policy.retries) { throw storageUnavailable(where, attempt, error); }
  const delayMs = backoffDelay(attempt, policy);
  onRetry?.({ attempt, offset, delayMs, error });
  await sleep(delayMs, signal);
}

export function cancelled(signal: AbortSignal): AppError {
  return new AppError('CANCELLED', 'the read was cancelled', {
    status: 499,
    expected: true,
    permanent: true,
    cause: signal.reason,
  });
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
  const reason = cause instanceof Error ? cause.message : String(cause);
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
