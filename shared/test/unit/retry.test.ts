import { pause, retryDelay } from '../../src/retry';

describe('retryDelay', () => {
  const backoff = { baseMs: 100, maxMs: 1000 };

  it('doubles per attempt from the base up to the cap when no jitter is drawn', () => {
    const none = () => 0;
    expect([1, 2, 3, 4, 5, 6].map((a) => retryDelay(a, backoff, none))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('takes at most the jitter share off: half by default, all of it with full jitter, none without', () => {
    const most = () => 0.999_999;
    expect(retryDelay(3, backoff, most)).toBe(200);
    expect(retryDelay(3, { ...backoff, jitter: 1 }, most)).toBe(0);
    expect(retryDelay(3, { ...backoff, jitter: 0 }, most)).toBe(400);
  });

  it('treats attempt 0 like the first', () => {
    expect(retryDelay(0, backoff, () => 0)).toBe(100);
  });
});

describe('pause', () => {
  it('ends early, without rejecting, when the signal aborts', async () => {
    const abort = new AbortController();
    const paused = pause(60_000, abort.signal);
    abort.abort();
    await expect(paused).resolves.toBeUndefined();
  });

  it('ends at once for a signal already aborted', async () => {
    await expect(pause(60_000, AbortSignal.abort())).resolves.toBeUndefined();
  });
});
