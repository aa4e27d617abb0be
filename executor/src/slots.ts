/**
 * At most `size` holders at once; the others wait in the order they came. The executor holds one
 * while a job is claimed and summed, so EXECUTOR_CONCURRENCY bounds the jobs summing at once while
 * the prefetch lets more messages wait, claim-free, behind them.
 */
export class Slots {
  private free: number;
  private readonly waiting: ((granted: boolean) => void)[] = [];
  private closed = false;

  constructor(size: number) {
    this.free = size;
  }

  /** True with a slot held (give it back with release), false if the signal aborts or close comes first. */
  take(signal: AbortSignal): Promise<boolean> {
    if (this.closed || signal.aborted) { return Promise.resolve(false); }
    if (this.free > 0) {
      this.free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const grant = (granted: boolean) => {
        signal.removeEventListener('abort', onAbort);
        resolve(granted);
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(grant);
        if (i >= 0) { this.waiting.splice(i, 1)[0](false); }
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(grant);
    });
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) { next(true); }
    else { this.free++; }
  }

  /** Every waiter, and every later take, gets false. */
  close(): void {
    this.closed = true;
    for (const grant of this.waiting.splice(0)) { grant(false); }
  }
}
