import { setMaxListeners } from 'node:events';
import { cancelled } from './backoff';

/** Fetches bytes [start, end) of one part, each once and in order; must stop soon after signal aborts. */
export type FetchPart = (start: number, end: number, signal: AbortSignal) => AsyncIterable<Buffer>;

export interface PartsOptions {
  partBytes: number;
  /** Parts fetched at once; memory held is about concurrency × partBytes. */
  concurrency: number;
  signal?: AbortSignal;
}

interface Part {
  start: number;
  end: number;
  buf: Buffer;
  filled: number;
  done: boolean;
}

/**
 * Bytes [start, end) fetched as parts on up to `concurrency` connections at once and handed out in
 * order: the first part's bytes as they arrive, the parts after it from their buffers once it is
 * done. A part buffer is reused only after the consumer has taken all of it and asked for more, so
 * at most `concurrency` buffers exist. Copying into them is cheaper than holding the received chunks:
 * those die young, where the garbage collector is cheap. The first part that fails stops every other one.
 */
export async function* orderedParts(start: number, end: number, fetch: FetchPart, options: PartsOptions): AsyncGenerator<Buffer> {
  const { partBytes, concurrency, signal } = options;
  const stop = new AbortController();
  // Every part and its requests listen to this signal.
  setMaxListeners(0, stop.signal);
  const onAbort = () => stop.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });

  const queue: Part[] = [];
  const spare: Buffer[] = [];
  let buffers = 0;
  let next = start;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  stop.signal.addEventListener('abort', notify, { once: true });

  const run = async (part: Part): Promise<void> => {
    for await (const chunk of fetch(part.start, part.end, stop.signal)) {
      if (part.filled + chunk.length > part.end - part.start) { throw new Error(`part at ${part.start} got more bytes than it asked for`); }
      chunk.copy(part.buf, part.filled);
      part.filled += chunk.length;
      if (part === queue[0]) { notify(); }
    }
    if (part.filled !== part.end - part.start) { throw new Error(`part at ${part.start} ended after ${part.filled} bytes`); }
    part.done = true;
  };
  const launch = () => {
    while (next < end && failure === undefined && (spare.length > 0 || buffers < concurrency)) {
      let buf = spare.pop();
      if (!buf) {
        buf = Buffer.allocUnsafe(Math.min(partBytes, end - start));
        buffers++;
      }
      const part: Part = { start: next, end: Math.min(next + partBytes, end), buf, filled: 0, done: false };
      next = part.end;
      queue.push(part);
      run(part).then(notify, (error: unknown) => {
        failure ??= { error };
        stop.abort();
      });
    }
  };

  try {
    launch();
    while (queue.length > 0) {
      const head = queue[0];
      let taken = 0;
      for (;;) {
        if (signal?.aborted) { throw cancelled(signal); }
        if (failure) { throw failure.error; }
        if (taken < head.filled) {
          const from = taken;
          taken = head.filled;
          yield head.buf.subarray(from, taken);
        } else if (head.done) {
          break;
        } else {
          await new Promise<void>((resolve) => (wake = resolve));
        }
      }
      queue.shift();
      spare.push(head.buf);
      launch();
    }
  } finally {
    stop.abort();
    signal?.removeEventListener('abort', onAbort);
  }
}
