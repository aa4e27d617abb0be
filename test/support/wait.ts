/** Polls until check returns a value other than undefined, or fails after timeoutMs with the last value seen. */
export async function waitFor<T>(
  check: () => Promise<T | undefined> | T | undefined,
  { timeoutMs = 30_000, intervalMs = 50, what = 'condition' }: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) { return v; }
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError instanceof Error ? `: ${lastError.message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Resolves with `check`'s first value other than undefined, checking now and each time something
 * calls the listeners in `listeners`; rejects when `check` throws, or with `late()` after timeoutMs.
 */
export function untilNotified<T>(listeners: Set<() => void>, check: () => T | undefined, timeoutMs: number, late: () => Error): Promise<T> {
  return new Promise((resolve, reject) => {
    const settle = (fn: () => void) => {
      clearTimeout(timer);
      listeners.delete(test);
      fn();
    };
    const test = () => {
      try {
        const value = check();
        if (value !== undefined) { settle(() => resolve(value)); }
      } catch (err) {
        settle(() => reject(err instanceof Error ? err : new Error(String(err))));
      }
    };
    const timer = setTimeout(() => settle(() => reject(late())), timeoutMs);
    listeners.add(test);
    test();
  });
}
