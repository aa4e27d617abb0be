import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { JobStore } from '../src/jobStore';
import { serviceUrls } from '../../test/support/services';

const options = { step: 10, offset: 0 };
const result = { rows: 1, columns: [{ name: 'a', index: 0, sum: '1', value: 1, count: 1 }] };

describe('JobStore against the real Redis', () => {
  let redis: Redis;
  let store: JobStore;
  let clock: number;

  beforeAll(async () => {
    redis = new Redis((await serviceUrls()).redisUrl);
  });
  beforeEach(() => {
    clock = Date.now();
    store = new JobStore(redis, { prefix: `test-store-${randomUUID().slice(0, 8)}`, ttlSeconds: 60, leaseMs: 1000, now: () => clock });
  });
  afterEach(() => store.destroy());
  afterAll(() => redis.quit());

  it('claims a queued job once per delivery and counts it as running while its lease lives', async () => {
    const { job } = await store.create({ file: 'a.csv', options });
    expect(await store.counts()).toEqual({ active: 1, queued: 1, running: 0 });
    expect(await store.claim(job.id)).toEqual({ kind: 'claimed', attempt: 1 });
    expect(await store.counts()).toEqual({ active: 1, queued: 0, running: 1 });
    expect((await store.get(job.id))?.status).toBe('running');

    // A second delivery while the lease lives is told to wait; once it lapses, it takes over.
    expect(await store.claim(job.id)).toEqual({ kind: 'busy', leaseUntil: clock + 1000 });
    clock += 1001;
    expect(await store.counts()).toEqual({ active: 0, queued: 0, running: 0 });
    expect(await store.claim(job.id)).toEqual({ kind: 'claimed', attempt: 2 });
  });

  it('fences out a stale attempt: its heartbeat, result and release are refused', async () => {
    const { job } = await store.create({ file: 'a.csv', options });
    await store.claim(job.id);
    clock += 1001;
    await store.claim(job.id);
    expect(await store.heartbeat(job.id, 1)).toBe('running');
    expect(await store.finish(job.id, 1, { result })).toBe(false);
    expect(await store.release(job.id, 1)).toBe(false);
    expect(await store.finish(job.id, 2, { result })).toBe(true);
    const done = await store.get(job.id);
    expect(done).toMatchObject({ status: 'succeeded', attempts: 2, result });
    expect(await store.claim(job.id)).toEqual({ kind: 'finished', status: 'succeeded' });
    expect(await store.counts()).toEqual({ active: 0, queued: 0, running: 0 });
    expect(await redis.ttl(`${(store as unknown as { prefix: string }).prefix}:job:${job.id}`)).toBeGreaterThan(50);
  });

  it('returns the same job for the same idempotency key, and one job for concurrent creates', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, () => store.create({ file: 'a.csv', options }, 'key-1')));
    expect(new Set(results.map((r) => r.job.id)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect((await store.counts()).queued).toBe(1);
  });

  it('cancels queued and running jobs, and leaves finished ones alone', async () => {
    const queued = (await store.create({ file: 'a.csv', options })).job;
    expect(await store.cancel(queued.id)).toBe('ended');
    expect(await store.claim(queued.id)).toEqual({ kind: 'finished', status: 'cancelled' });

    const running = (await store.create({ file: 'a.csv', options })).job;
    await store.claim(running.id);
    expect(await store.cancel(running.id)).toBe('ended');
    expect(await store.heartbeat(running.id, 1)).toBe('cancelled');
    expect(await store.finish(running.id, 1, { result })).toBe(false);
    expect(await store.cancel(running.id)).toBe('cancelled');
    expect(await store.cancel('nope')).toBe('missing');
    expect(await store.counts()).toEqual({ active: 0, queued: 0, running: 0 });
  });

  it('marks a dead-lettered job failed with its last transient error', async () => {
    const { job } = await store.create({ file: 'a.csv', options });
    await store.claim(job.id);
    await store.release(job.id, 1, { code: 'STORAGE_UNAVAILABLE', message: 'S3 did not answer' });
    expect((await store.get(job.id))?.status).toBe('queued');
    expect(await store.failDeadLettered(job.id, { code: 'DELIVERY_LIMIT', message: 'too many' })).toBe('ended');
    expect(await store.get(job.id)).toMatchObject({ status: 'failed', error: { code: 'STORAGE_UNAVAILABLE' } });
  });

  it('keeps unpublished jobs in the outbox until marked, and discards a job the broker refused', async () => {
    const a = (await store.create({ file: 'a.csv', options })).job;
    const b = (await store.create({ file: 'b.csv', options }, 'k')).job;
    clock += 5000;
    expect((await store.unpublished(1000)).sort()).toEqual([a.id, b.id].sort());
    await store.markPublished(a.id);
    expect(await store.unpublished(1000)).toEqual([b.id]);
    expect(await store.discard(b.id, 'k')).toBe(true);
    expect(await store.get(b.id)).toBeUndefined();
    expect(await store.unpublished(0)).toEqual([]);
    // The key is free again: a retry after the 503 makes a new job.
    expect((await store.create({ file: 'b.csv', options }, 'k')).created).toBe(true);
  });
});
