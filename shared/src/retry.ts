import { setTimeout as delay } from 'node:timers/promises';

/** Exponential backoff: the delay doubles per attempt from baseMs up to maxMs. */
export interface Backoff {
  baseMs: number;
  maxMs: number;
  /** The part of each delay drawn at random: 1 is full jitter, 0 none; 0.5 when absent. */
  jitter?: number;
}

/**
 * The delay before the attempt-th retry (1-based): min(maxMs, baseMs·2^(attempt-1)), less a random
 * share of it, so that many clients failing at once do not come back at once.
 */
export function retryDelay(attempt: number, backoff: Backoff, random: () => number = Math.random): number {
  const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling * (1 - (backoff.jitter ?? 0.5) * random()));
}

/** Waits ms, or less when the signal aborts first; never rejects (the caller looks at the signal). */
export async function pause(ms: number, signal?: AbortSignal): Promise<void> {
  await delay(ms, undefined, { signal }).catch(() => undefined);
}
