import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisEpoch, type EpochChange } from '../src/epoch';
import { createLogger } from '../src/logger';
import { createRedis } from '../src/redis';
import { startRedisServer, type PrivateServer } from '../../test/support/servers';
import { waitFor } from '../../test/support/wait';

/** The epoch against private Redis servers that are restarted for real, with and without persistence. */

const logger = createLogger('test', 'silent');
const prefix = () => `test-epoch-${randomUUID().slice(0, 8)}`;

describe('the Redis epoch, on a Redis that keeps nothing on disk', () => {
  let server: PrivateServer;
  let redis: Redis;

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(() => server?.destroy());
  beforeEach(() => {
    redis = createRedis(server.url, logger);
  });
  afterEach(() => redis.quit());

  it('is written once by whoever finds none, and every process agrees on it', async () => {
    const p = prefix();
    const others = Array.from({ length: 5 }, () => new Redis(server.url));
    try {
      expect(await new RedisEpoch(redis, p).read()).toBeUndefined();
      const results = await Promise.all([redis, ...others].map((c) => new RedisEpoch(c, p).ensure()));
      expect(new Set(results.map((r) => r.epoch)).size).toBe(1);
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(await new RedisEpoch(redis, p).read()).toBe(results[0].epoch);
      // Under another prefix (another tenant) there is another epoch.
      expect((await new RedisEpoch(redis, prefix()).ensure()).epoch).not.toBe(results[0].epoch);
    } finally {
      for (const c of others) { c.disconnect(); }
    }
  });

  it('changes when Redis restarts empty, and a watching client hears it once on reconnecting', async () => {
    const p = prefix();
    const epoch = new RedisEpoch(redis, p);
    const changes: EpochChange[] = [];
    epoch.onChange((c) => changes.push(c));
    const stop = epoch.watch(logger);
    const first = await waitFor(() => epoch.current, { what: 'the first epoch' });
    await epoch.ensure();
    expect(changes).toEqual([]);

    await server.restart('crash');
    await waitFor(() => (changes.length > 0 ? true : undefined), { timeoutMs: 20_000, what: 'the new epoch to be noticed' });
    expect(changes).toEqual([{ previous: first, current: epoch.current, created: true }]);
    expect(epoch.current).not.toBe(first);
    // Checking again (as an executor does for each unknown job) finds the same new epoch: no second alarm.
    await Promise.all([epoch.ensure(), epoch.ensure()]);
    expect(changes).toHaveLength(1);
    stop();
  });

  it('tells a job expired from a job Redis forgot: the message epoch against the current one', async () => {
    const p = prefix();
    const published = (await new RedisEpoch(redis, p).ensure()).epoch;
    expect((await new RedisEpoch(redis, p).ensure()).epoch).toBe(published);
    await server.restart('graceful');
    const executor = createRedis(server.url, logger);
    try {
      expect((await new RedisEpoch(executor, p).ensure()).epoch).not.toBe(published);
    } finally {
      executor.disconnect();
    }
    // The shared client reconnects by itself; let it, so it closes cleanly.
    await redis.ping();
  });
});

describe('the Redis epoch, on a Redis with an append-only file', () => {
  let server: PrivateServer;
  beforeAll(async () => {
    server = await startRedisServer({ appendOnly: true });
  });
  afterAll(() => server?.destroy());

  it('survives a crash and restart: no change is reported', async () => {
    const redis = createRedis(server.url, logger);
    try {
      const epoch = new RedisEpoch(redis, prefix());
      const changes: EpochChange[] = [];
      epoch.onChange((c) => changes.push(c));
      const { epoch: before } = await epoch.ensure();
      const reconnected = new Promise((resolve) => redis.once('ready', resolve));
      await server.restart('crash');
      await reconnected;
      expect(await epoch.ensure()).toEqual({ epoch: before, created: false });
      expect(changes).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });
});
