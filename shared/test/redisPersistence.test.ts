import { Redis } from 'ioredis';
import { redisPersistence, warnIfRedisForgets } from '../src/redis';
import type { Logger } from '../src/logger';
import { startRedisServer, type RedisServerOptions } from '../../test/support/servers';

/** The start-up check of what Redis keeps on disk, against private servers configured each way. */

function recordingLogger() {
  const lines: { level: string; msg: string; fields?: object }[] = [];
  const at =
    (level: string) =>
    (a: object | string, b?: string): void => {
      lines.push(typeof a === 'string' ? { level, msg: a } : { level, msg: b ?? '', fields: a });
    };
  return { logger: { warn: at('warn'), info: at('info'), error: at('error') } as unknown as Logger, lines };
}

async function check(options: RedisServerOptions) {
  const server = await startRedisServer(options);
  const redis = new Redis(server.url);
  try {
    const { logger, lines } = recordingLogger();
    const found = await warnIfRedisForgets(redis, logger);
    return { found, lines, direct: await redisPersistence(redis) };
  } finally {
    redis.disconnect();
    await server.destroy();
  }
}

describe('warnIfRedisForgets', () => {
  it('warns about a Redis that keeps nothing on disk', async () => {
    const { found, lines } = await check({});
    expect(found).toEqual({ aof: false, appendfsync: 'everysec', save: '' });
    expect(lines).toEqual([expect.objectContaining({ level: 'warn', msg: expect.stringMatching(/keeps nothing on disk/) })]);
  });

  it('warns about snapshots only', async () => {
    const { lines } = await check({ args: ['--save', '900 1'] });
    expect(lines).toEqual([expect.objectContaining({ level: 'warn', msg: expect.stringMatching(/only snapshots \(save "900 1"\)/) })]);
  });

  it('is silent for an AOF fsynced on every write, and only notes one fsynced each second', async () => {
    expect((await check({ appendOnly: true })).lines).toEqual([]);
    const { found, lines } = await check({ args: ['--appendonly', 'yes', '--appendfsync', 'everysec'] });
    expect(found?.aof).toBe(true);
    expect(lines).toEqual([expect.objectContaining({ level: 'info', msg: expect.stringMatching(/once a second/) })]);
  });

  it('tolerates CONFIG being disabled: it says it cannot tell and does not throw', async () => {
    const { found, direct, lines } = await check({ args: ['--rename-command', 'CONFIG', ''] });
    expect(found).toBeUndefined();
    expect(direct).toBeUndefined();
    expect(lines).toEqual([expect.objectContaining({ level: 'info', msg: expect.stringMatching(/cannot tell/) })]);
  });

  it('never throws when Redis is unreachable', async () => {
    const server = await startRedisServer();
    const redis = new Redis(server.url, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
    redis.on('error', () => undefined);
    await server.destroy();
    const { logger, lines } = recordingLogger();
    await expect(warnIfRedisForgets(redis, logger)).resolves.toBeUndefined();
    expect(lines).toEqual([expect.objectContaining({ level: 'info', msg: expect.stringMatching(/cannot tell/) })]);
    expect(redis.status).toBe('end');
  });
});
