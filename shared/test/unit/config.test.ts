import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config';

describe('loadConfig: AMQP_URL', () => {
  it('defaults to the local broker', () => {
    expect(loadConfig({}).amqpUrls).toEqual(['amqp://guest:guest@127.0.0.1:5672']);
  });

  it('takes the nodes of a cluster separated by commas, spaces around them ignored', () => {
    const config = loadConfig({ AMQP_URL: 'amqp://a:5672, amqps://b:5671 ,amqp://c' });
    expect(config.amqpUrls).toEqual(['amqp://a:5672', 'amqps://b:5671', 'amqp://c']);
  });

  it.each([['http://a:5672'], ['amqp://a,'], ['amqp://a,redis://b']])('refuses %s, naming the variable', (value) => {
    expect(() => loadConfig({ AMQP_URL: value })).toThrow(ConfigError);
    expect(() => loadConfig({ AMQP_URL: value })).toThrow(/AMQP_URL must be amqp: or amqps:\/\/ URLs separated by commas/);
  });
});

describe('Redis Sentinel and results archive configuration', () => {
  it('reads a lone Redis by default: no sentinels, no replica to wait for', () => {
    const c = loadConfig({});
    expect(c.redisSentinel).toBeUndefined();
    expect(c.redisWait).toEqual({ replicas: 0, timeoutMs: 2000 });
  });

  it('parses REDIS_SENTINELS as host:port pairs, and waits for one replica with Sentinel', () => {
    const c = loadConfig({ REDIS_SENTINELS: ' 10.0.0.1:26379, sentinel-b:26380,[::1]:5000,sentinel-c ', REDIS_SENTINEL_NAME: 'mymaster' });
    expect(c.redisSentinel).toEqual({
      name: 'mymaster',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: 'sentinel-b', port: 26380 },
        { host: '::1', port: 5000 },
        { host: 'sentinel-c', port: 26379 },
      ],
    });
    expect(c.redisWait.replicas).toBe(1);
    expect(loadConfig({ REDIS_SENTINELS: 'a:1', REDIS_SENTINEL_NAME: 'm', REDIS_WAIT_REPLICAS: '0' }).redisWait.replicas).toBe(0);
    expect(loadConfig({ REDIS_WAIT_REPLICAS: '2', REDIS_WAIT_TIMEOUT_MS: '500' }).redisWait).toEqual({ replicas: 2, timeoutMs: 500 });
  });

  it.each([
    [{ REDIS_SENTINELS: 'a:1' }, 'REDIS_SENTINELS and REDIS_SENTINEL_NAME must be set together'],
    [{ REDIS_SENTINEL_NAME: 'm' }, 'REDIS_SENTINELS and REDIS_SENTINEL_NAME must be set together'],
    [{ REDIS_SENTINELS: 'a:1,b:99999', REDIS_SENTINEL_NAME: 'm' }, 'REDIS_SENTINELS "b:99999" is not host:port'],
    [{ REDIS_SENTINELS: 'a:b:c', REDIS_SENTINEL_NAME: 'm' }, 'REDIS_SENTINELS "a:b:c" is not host:port'],
    [{ REDIS_SENTINELS: ',', REDIS_SENTINEL_NAME: 'm' }, 'REDIS_SENTINELS must list at least one host:port'],
    [{ REDIS_SENTINELS: 'a:1', REDIS_SENTINEL_NAME: 'my master' }, 'REDIS_SENTINEL_NAME must be letters'],
    [{ REDIS_WAIT_REPLICAS: '-1' }, 'REDIS_WAIT_REPLICAS'],
  ])('refuses %j naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('puts the results archive under DATA_DIR unless RESULTS_LOCATION says otherwise', () => {
    expect(loadConfig({ DATA_DIR: '/srv/data' }).results).toEqual({ kind: 'local', dir: path.resolve('/srv/data/.decisum/results') });
    expect(loadConfig({ DATA_DIR: '/srv/data', RESULTS_LOCATION: 'archive' }).results).toEqual({ kind: 'local', dir: '/srv/data/archive' });
    expect(loadConfig({ DATA_DIR: '/srv/data', RESULTS_LOCATION: '/var/lib/decisum' }).results).toEqual({ kind: 'local', dir: '/var/lib/decisum' });
    expect(loadConfig({ RESULTS_LOCATION: 's3://results-bucket/decisum/archive' }).results).toEqual({
      kind: 's3',
      bucket: 'results-bucket',
      prefix: 'decisum/archive/',
    });
    expect(loadConfig({ RESULTS_LOCATION: 's3://results-bucket/' }).results).toEqual({ kind: 's3', bucket: 'results-bucket', prefix: '' });
  });

  it.each([
    ['s3://No_Bucket/x', 'RESULTS_LOCATION s3://No_Bucket/x: "No_Bucket" is not a valid bucket name'],
    ['s3://bucket/a/../b', 'RESULTS_LOCATION must not have . or .. segments'],
  ])('refuses RESULTS_LOCATION=%s', (value, message) => {
    expect(() => loadConfig({ RESULTS_LOCATION: value })).toThrow(message);
  });
});

describe('loadConfig: EXECUTOR_CONCURRENCY and EXECUTOR_PREFETCH', () => {
  it('holds four messages per job summed at once unless told otherwise', () => {
    expect(loadConfig({}).executor).toMatchObject({ concurrency: 2, prefetch: 8 });
    expect(loadConfig({ EXECUTOR_CONCURRENCY: '3' }).executor).toMatchObject({ concurrency: 3, prefetch: 12 });
    expect(loadConfig({ EXECUTOR_CONCURRENCY: '3', EXECUTOR_PREFETCH: '3' }).executor).toMatchObject({ concurrency: 3, prefetch: 3 });
  });

  it('refuses a prefetch below the concurrency, naming both', () => {
    expect(() => loadConfig({ EXECUTOR_CONCURRENCY: '4', EXECUTOR_PREFETCH: '2' })).toThrow(
      'invalid configuration: EXECUTOR_PREFETCH (2) must be at least EXECUTOR_CONCURRENCY (4)',
    );
    expect(() => loadConfig({ EXECUTOR_PREFETCH: '0' })).toThrow(/EXECUTOR_PREFETCH/);
  });
});
