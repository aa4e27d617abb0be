import { spawnSync } from 'node:child_process';
import path from 'node:path';
import request from 'supertest';
import { problemOf, jobOf } from '../support/http';
import { ConfigError, createLogger } from '@decisum/shared';
import { startApi } from '../../api/src/start';
import { startStack, type Stack } from '../support/stack';

const ROOT = path.resolve(__dirname, '..', '..');

/** Protected mode (no tokens): this machine only, by Host too, so a DNS-rebinding page cannot drive it; never beyond loopback. */
describe('protected mode', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ executors: 0 });
    stack.writeFile('sample.csv', 'a,b\n1,2\n');
  });
  afterAll(() => stack?.stop());

  it.each(['evil.example', 'evil.example:8080', '10.0.0.5', 'localhost.evil.example'])('refuses Host %s with 403 HOST_NOT_ALLOWED, and queues nothing', async (host) => {
    const res = await request(stack.url).post('/api/v1/jobs').set('Host', host).send({ file: 'sample.csv' }).expect(403);
    expect(problemOf(res).code).toBe('HOST_NOT_ALLOWED');
    expect(problemOf(await request(stack.url).get('/').set('Host', host).expect(403)).code).toBe('HOST_NOT_ALLOWED');
    expect(await stack.queueDepth()).toBe(0);
    expect((await stack.store.list({ limit: 10 })).jobs).toEqual([]);
  });

  it.each(['localhost', 'localhost:8080', '127.0.0.1:1', '[::1]:8080'])('answers Host %s without a token, as the local owner', async (host) => {
    const res = await request(stack.url).get('/api/v1/jobs/active').set('Host', host).expect(200);
    expect(res.body).toMatchObject({ active: expect.any(Number) });
  });

  it('records jobs under the local owner', async () => {
    const res = await request(stack.url).post('/api/v1/jobs').send({ file: 'sample.csv' }).expect(202);
    expect(jobOf(res).owner).toBe('local');
  });

  it('will not listen beyond loopback without tokens', async () => {
    const logger = createLogger('test', 'silent');
    const services = { store: stack.store, broker: stack.broker, storage: stack.storage, redis: stack.redis, registry: undefined as never, feed: stack.feed, epoch: undefined as never, archive: undefined as never };
    await expect(startApi(services, stack.config, logger, { host: '0.0.0.0' })).rejects.toBeInstanceOf(ConfigError);
  });

  it('the API process refuses to start on HOST=0.0.0.0 without tokens, with one line and a non-zero exit', () => {
    const run = spawnSync(process.execPath, [path.join(ROOT, 'api/dist/main.js')], {
      env: { PATH: process.env.PATH ?? '', HOST: '0.0.0.0', PORT: '0', REDIS_URL: 'redis://127.0.0.1:1', AMQP_URL: 'amqp://127.0.0.1:1' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(78);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/^api: refusing to start: HOST=0\.0\.0\.0 .*API_TOKENS/);
  });
});
