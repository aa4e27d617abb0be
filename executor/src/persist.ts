import { pause, retryDelay, type Logger } from '@decisum/shared';

const STORE_BACKOFF = { baseMs: 100, maxMs: 5000 };

/**
 * Retries a Redis write until it lands. Once the executor is stopping it gives up after a few more
 * tries and resolves undefined: the message then goes back to the queue and the write happens on redelivery.
 */
export async function untilStored<T>(write: () => Promise<T>, stopping: AbortSignal, log: Logger): Promise<T | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (stopping.aborted && attempt > 3) { return undefined; }
      if (attempt === 1) { log.warn({ err }, 'redis write failed; retrying'); }
      await pause(retryDelay(attempt, STORE_BACKOFF));
    }
  }
}
