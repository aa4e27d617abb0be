import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { JobStore } from '../src/jobStore';
import { serviceUrls } from '../../test/support/services';
import { startRedisServer } from '../../test/support/servers';

const options = { step: 10, offset: 0 };
const result = { rows: 1, columns: [{ name: 'a', index: 0, sum: '1', value: 1, count: 1 }] };

describe('JobStore against the real Redis', () => {
  let redis: Redis;
  let store: JobStore;
  let clock: number;
  let prefix: string;

  beforeAll(async () => {
    redis = new Redis((await serviceUrls()).redisUrl);
  });
  beforeEach(() => {
    clock = Date.now();
    prefix = `test-store-${randomUUID().slice(0, 8)}`;
    store = new JobStore(redis, { prefix, ttlSeconds: 60, leaseMs: 1000, now: () => clock });
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

  it('takes a place among the owner\'s active jobs in the script that records the job, and gives it back on discard', async () => {
    const limited = { options, owner: 'ann', activeLimit: 2 };
    const a = (await store.create({ file: 'a.csv', ...limited }, 'ka')).job;
    // A replay of an Idempotency-Key takes no second place.
    expect((await store.create({ file: 'a.csv', ...limited }, 'ka')).created).toBe(false);
    const b = (await store.create({ file: 'b.csv', ...limited })).job;
    const jobsBefore = await redis.zcard(`${prefix}:jobs`);
    await expect(store.create({ file: 'c.csv', ...limited })).rejects.toMatchObject({ code: 'TOO_MANY_ACTIVE_JOBS', status: 429, retryAfter: 10 });
    // Refused: nothing was recorded.
    expect(await redis.zcard(`${prefix}:jobs`)).toBe(jobsBefore);
    // Another owner has places of its own.
    expect((await store.create({ file: 'c.csv', options, owner: 'bob', activeLimit: 2 })).created).toBe(true);

    // A job taken back (its publication failed) frees its place at once.
    expect(await store.discard(b.id, undefined, 'ann')).toBe(true);
    const c = (await store.create({ file: 'c.csv', ...limited })).job;
    await expect(store.create({ file: 'd.csv', ...limited })).rejects.toMatchObject({ code: 'TOO_MANY_ACTIVE_JOBS' });
    // A finished job's place is swept out when the set is full.
    await store.claim(a.id);
    await store.finish(a.id, 1, { result });
    expect((await store.create({ file: 'd.csv', ...limited })).job.id).not.toBe(c.id);
  });

  it('appends every state change to the events stream in the script that makes it, and progress to its own stream', async () => {
    const { job } = await store.create({ file: 'a.csv', options });
    const first = await store.snapshot(job.id);
    expect(first.job).toMatchObject({ id: job.id, status: 'queued' });
    await store.claim(job.id);
    await store.heartbeat(job.id, 1, { bytesRead: 10, bytesTotal: 100, rows: 1 });
    // Unchanged progress is no event: a lease renewal alone writes nothing to the stream.
    await store.heartbeat(job.id, 1, { bytesRead: 10, bytesTotal: 100, rows: 1 });
    await store.release(job.id, 1, { code: 'STORAGE_UNAVAILABLE', message: 'S3 did not answer' });
    await store.claim(job.id);
    await store.finish(job.id, 2, { result });
    // A stale attempt's write is refused, and so is its event.
    expect(await store.finish(job.id, 1, { result })).toBe(false);

    const { events, complete } = await store.eventsAfter('0-0', 100);
    expect(complete).toBe(true);
    expect(events.map((e) => (e.type === 'job' ? `${e.job.status}/${e.job.attempts}` : e.type))).toEqual([
      'queued/0',
      'running/1',
      'queued/1',
      'running/2',
      'succeeded/2',
    ]);
    const last = events.at(-1)!;
    expect(last.type === 'job' && last.job).toEqual(await store.get(job.id));
    expect(first.tip).toBe(events[0].id);
    // Resuming after an event gives the ones after it.
    expect((await store.eventsAfter(events[2].id, 100)).events.map((e) => e.id)).toEqual(events.slice(3).map((e) => e.id));

    const prefix = (store as unknown as { prefix: string }).prefix;
    const progress = await redis.xrange(`${prefix}:progress`, '-', '+');
    expect(progress.map(([, fields]) => fields)).toEqual([['id', job.id, 'owner', 'local', 'progress', JSON.stringify({ bytesRead: 10, bytesTotal: 100, rows: 1 })]]);
  });

  it('says a record taken back is gone, and when the history no longer reaches back far enough', async () => {
    const { job } = await store.create({ file: 'a.csv', options });
    await store.discard(job.id);
    const { events } = await store.eventsAfter('0-0', 10);
    expect(events.map((e) => [e.type, e.jobId])).toEqual([
      ['job', job.id],
      ['gone', job.id],
    ]);

    // A history of one keeps one block of entries (Redis trims whole blocks of 100): 250 events trim some.
    const short = new JobStore(redis, { prefix: `${(store as unknown as { prefix: string }).prefix}-short`, ttlSeconds: 60, leaseMs: 1000, eventHistory: 1 });
    try {
      for (let i = 0; i < 250; i++) { await short.create({ file: `${i}.csv`, options }); }
      const all = await redis.xrange(`${(store as unknown as { prefix: string }).prefix}-short:events`, '-', '+');
      expect(all.length).toBeLessThan(250);
      expect((await short.eventsAfter('1-0', 10)).complete).toBe(false);
      expect((await short.eventsAfter(all[0][0], 10)).complete).toBe(true);
    } finally {
      await short.destroy();
    }
  });

  it('makes a final job\'s callback due in the script that makes it final, and records each attempt', async () => {
    const { job } = await store.create({ file: 'a.csv', options, callbackUrl: 'https://hooks.example.com/x' });
    expect((await store.get(job.id))?.callback).toEqual({ url: 'https://hooks.example.com/x', status: 'pending', attempts: 0 });
    expect(await store.claimCallbacks(10, clock + 5000)).toEqual([]);
    await store.claim(job.id);
    await store.finish(job.id, 1, { result });
    expect(await store.nextCallbackDue()).toBe(clock);

    // Claimed: leased until the given time, so a second claimer does not take it meanwhile.
    expect(await store.claimCallbacks(10, clock + 5000)).toEqual([job.id]);
    expect(await store.claimCallbacks(10, clock + 5000)).toEqual([]);
    expect(await store.callbackAttempted(job.id, { outcome: 'retry', at: clock + 100, error: 'HTTP 500' })).toBe(1);
    expect((await store.get(job.id))?.callback).toEqual({ url: 'https://hooks.example.com/x', status: 'pending', attempts: 1, lastError: 'HTTP 500' });
    expect(await store.claimCallbacks(10, clock + 5000)).toEqual([]);
    clock += 100;
    expect(await store.claimCallbacks(10, clock + 5000)).toEqual([job.id]);
    expect(await store.callbackAttempted(job.id, { outcome: 'delivered' })).toBe(2);
    expect((await store.get(job.id))?.callback).toMatchObject({ status: 'delivered', attempts: 2 });
    expect(await store.nextCallbackDue()).toBeUndefined();

    // Cancelled jobs call back too; a job without a callback is never due.
    const cancelled = (await store.create({ file: 'a.csv', options, callbackUrl: 'https://hooks.example.com/y' })).job;
    const plain = (await store.create({ file: 'a.csv', options })).job;
    await store.cancel(cancelled.id);
    await store.cancel(plain.id);
    expect(await store.claimCallbacks(10, clock + 5000)).toEqual([cancelled.id]);
    expect(await store.callbackAttempted(cancelled.id, { outcome: 'failed', error: 'redirect (302) not followed' })).toBe(1);
    expect((await store.get(cancelled.id))?.callback).toMatchObject({ status: 'failed', lastError: 'redirect (302) not followed' });
  });
});

test('a Redis that holds none of the scripts (new, flushed, failed over) runs each change once, by its text', async () => {
  const server = await startRedisServer();
  const redis = new Redis(server.url);
  try {
    const store = new JobStore(redis, { prefix: `test-noscript-${randomUUID().slice(0, 8)}`, ttlSeconds: 60, leaseMs: 60_000 });
    for (let round = 0; round < 2; round++) {
      await redis.script('FLUSH');
      const { job, created } = await store.create({ file: 'a.csv', options });
      expect(created).toBe(true);
      expect(await store.counts()).toEqual({ active: 1, queued: 1, running: 0 });
      await redis.script('FLUSH');
      expect(await store.claim(job.id)).toEqual({ kind: 'claimed', attempt: 1 });
      await redis.script('FLUSH');
      expect(await store.renew([{ id: job.id, attempt: 1 }])).toEqual(['ok']);
      expect(await store.finish(job.id, 1, { result })).toBe(true);
      expect(await store.counts()).toEqual({ active: 0, queued: 0, running: 0 });
    }
    await store.destroy();
  } finally {
    redis.disconnect();
    await server.destroy();
  }
});
