import { AppError, orderedParts, type FetchPart } from '../../../src/storage';
import { waitFor } from '../../../../test/support/wait';

/** The byte at offset i of a made-up object. */
const byteAt = (i: number) => (i * 7 + (i >> 8)) & 0xff;

interface Fetcher {
  fetch: FetchPart;
  /** Parts being fetched right now, and the most at once. */
  active: number;
  peak: number;
  started: number[];
  /** Parts that noticed their abort signal. */
  aborted: number;
}

/**
 * A stand-in for ranged GETs: each part arrives in pieces of `piece` bytes, the part starting at
 * `slow` taking longer per piece, and the part at `failAt` failing half way.
 */
function fetcher(opts: { piece: number; slow?: number; failAt?: number; error?: unknown } = { piece: 1000 }): Fetcher {
  const f: Fetcher = {
    active: 0,
    peak: 0,
    started: [],
    aborted: 0,
    fetch: async function* (start, end, signal) {
      f.active++;
      f.peak = Math.max(f.peak, f.active);
      f.started.push(start);
      try {
        for (let at = start; at < end; at += opts.piece) {
          await new Promise((r) => setTimeout(r, start === opts.slow ? 5 : 0));
          if (signal.aborted) {
            f.aborted++;
            throw signal.reason;
          }
          if (start === opts.failAt && at - start >= (end - start) / 2) { throw opts.error; }
          yield Buffer.from(Array.from({ length: Math.min(opts.piece, end - at) }, (_, k) => byteAt(at + k)));
        }
      } finally {
        f.active--;
      }
    },
  };
  return f;
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  // Copy: a chunk is ours only until we ask for the next one.
  for await (const c of chunks) { out.push(Buffer.from(c)); }
  return Buffer.concat(out);
}

const expected = (start: number, end: number) => Buffer.from(Array.from({ length: end - start }, (_, k) => byteAt(start + k)));

test('hands out the range in order, whatever order the parts finish in', async () => {
  // The first part is the slowest: the others finish first and wait in their buffers.
  const f = fetcher({ piece: 700, slow: 100 });
  const got = await collect(orderedParts(100, 20_100, f.fetch, { partBytes: 3000, concurrency: 4 }));
  expect(got).toEqual(expected(100, 20_100));
  expect(f.started).toEqual([100, 3100, 6100, 9100, 12_100, 15_100, 18_100]);
});

test('never has more than `concurrency` parts, hence buffers, in flight', async () => {
  const f = fetcher({ piece: 500, slow: 0 });
  await collect(orderedParts(0, 50_000, f.fetch, { partBytes: 2000, concurrency: 3 }));
  expect(f.peak).toBe(3);
});

test('a chunk stays intact until the consumer asks for the next one', async () => {
  const f = fetcher({ piece: 300 });
  const seen: Buffer[] = [];
  for await (const c of orderedParts(0, 12_000, f.fetch, { partBytes: 1000, concurrency: 2 })) {
    // Let every other part land in its buffer before looking at this chunk.
    await new Promise((r) => setTimeout(r, 2));
    seen.push(Buffer.from(c));
  }
  expect(Buffer.concat(seen)).toEqual(expected(0, 12_000));
});

test('a failed part fails the read at once and stops the other parts', async () => {
  const boom = new AppError('FILE_CHANGED', 'x changed while it was being read (ETag)');
  const f = fetcher({ piece: 100, slow: 0, failAt: 4000, error: boom });
  let taken = 0;
  const err = await (async () => {
    for await (const c of orderedParts(0, 40_000, f.fetch, { partBytes: 2000, concurrency: 4 })) { taken += c.length; }
  })().catch((e: unknown) => e);
  expect(err).toBe(boom);
  // The slow first part was still running: it did not get to finish.
  expect(taken).toBeLessThan(2000);
  await waitFor(() => (f.active === 0 ? true : undefined), { what: 'the other parts to stop' });
  expect(f.aborted).toBeGreaterThan(0);
});

test('the caller\'s abort ends the read with CANCELLED and stops every part', async () => {
  const controller = new AbortController();
  const f = fetcher({ piece: 100, slow: 0 });
  const it = orderedParts(0, 40_000, f.fetch, { partBytes: 2000, concurrency: 4, signal: controller.signal })[Symbol.asyncIterator]();
  await it.next();
  controller.abort();
  await expect(it.next()).rejects.toMatchObject({ code: 'CANCELLED' });
  await waitFor(() => (f.active === 0 ? true : undefined), { what: 'every part to stop' });
  expect(f.aborted).toBeGreaterThan(0);
});

test('stopping early (return, as a break does) stops the parts in flight', async () => {
  const f = fetcher({ piece: 100, slow: 0 });
  const it = orderedParts(0, 40_000, f.fetch, { partBytes: 2000, concurrency: 4 })[Symbol.asyncIterator]();
  await it.next();
  await it.return?.(undefined);
  await waitFor(() => (f.active === 0 ? true : undefined), { what: 'the parts to stop' });
  expect(f.aborted).toBeGreaterThan(0);
  expect(f.started).toHaveLength(4);
});
