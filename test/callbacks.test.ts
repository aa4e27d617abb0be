import { createHmac, randomUUID } from 'node:crypto';
import type { LookupAddress } from 'node:dns';
import { once } from 'node:events';
import http from 'node:http';
import request from 'supertest';
import { JobStore, createLogger, parseCallbackHosts, type Job } from '@decisum/shared';
import { CallbackDispatcher, DeliveryRefused, deliver } from '../executor/src/callbacks';
import { Cluster } from './support/processes';
import { Receiver } from './support/receiver';
import { SAMPLE_EXPECTED, expectSums, sampleCsv } from './reliability/helpers';
import { serviceUrls } from './support/services';
import { startStack, type Stack } from './support/stack';
import { waitFor } from './support/wait';
import { jobOf, problemOf } from './support/http';

/**
 * Signed webhooks, delivered for real to receivers on loopback ports: the delivery itself (the
 * address checked after resolution and pinned, no redirects), the dispatcher in an executor against
 * the real Redis and RabbitMQ, and an executor killed between the result and the webhook.
 */

const SECRET = 'test-callback-secret-0123456789';
const receivers: Receiver[] = [];
const receiver = async (...args: Parameters<typeof Receiver.start>) => {
  const r = await Receiver.start(...args);
  receivers.push(r);
  return r;
};
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

/** The receiver's side: the signature checked as the README tells a receiver to, with node:crypto alone. */
function verify(header: string | string[] | undefined, body: string, secret = SECRET): { t: number; valid: boolean } {
  const parts = Object.fromEntries(String(header).split(',').map((p) => p.split('=') as [string, string]));
  const expected = createHmac('sha256', secret).update(`${parts.t}.${body}`).digest('hex');
  return { t: Number(parts.t), valid: parts.v1 === expected };
}

describe('one delivery', () => {
  const options = (hosts: string, extra: Partial<Parameters<typeof deliver>[2]> = {}) => ({ hosts: parseCallbackHosts(hosts), secret: SECRET, timeoutMs: 2000, ...extra });

  it('connects to the address it checked: a second lookup (DNS rebinding) never happens', async () => {
    const r = await receiver();
    const lookups: string[] = [];
    // The first answer is the listed loopback; any later one would point at an address nothing listens on.
    const resolve = (host: string): Promise<LookupAddress[]> => {
      lookups.push(host);
      return Promise.resolve(lookups.length === 1 ? [{ address: '127.0.0.1', family: 4 }] : [{ address: '203.0.113.9', family: 4 }]);
    };
    await deliver(`http://hook.test:${r.port}/in`, '{"a":1}', options('hook.test,127.0.0.1', { resolve }));
    expect(lookups).toEqual(['hook.test']);
    expect(r.received).toEqual([expect.objectContaining({ method: 'POST', url: '/in', body: '{"a":1}' })]);
    expect(r.received[0].headers.host).toBe(`hook.test:${r.port}`);
    expect(r.received[0].headers['content-type']).toBe('application/json');
    expect(verify(r.received[0].headers['decisum-signature'], '{"a":1}').valid).toBe(true);
  });

  it('skips resolved addresses that are not allowed and uses one that is', async () => {
    const r = await receiver();
    const resolve = () => Promise.resolve([{ address: '10.0.0.7', family: 4 }, { address: '127.0.0.1', family: 4 }]);
    await deliver(`http://hook.test:${r.port}/`, '{}', options('hook.test,127.0.0.1', { resolve }));
    expect(r.received).toHaveLength(1);
  });

  it('refuses a name that resolves only to a private or loopback address CALLBACK_HOSTS does not list, before connecting', async () => {
    const r = await receiver();
    // `localhost` is listed by name, but its address is not: the system resolver's own answer.
    const err = await deliver(`http://localhost:${r.port}/`, '{}', options('localhost')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeliveryRefused);
    expect((err as Error).message).toBe('callback host localhost resolves to a private, loopback or otherwise non-public address that CALLBACK_HOSTS does not list');
    const rebound = await deliver(`http://hook.test:${r.port}/`, '{}', options('hook.test', { resolve: () => Promise.resolve([{ address: '169.254.169.254', family: 4 }]) })).catch((e: unknown) => e);
    expect(rebound).toBeInstanceOf(DeliveryRefused);
    expect(r.received).toEqual([]);
  });

  it('does not follow a redirect, and says so', async () => {
    const elsewhere = await receiver();
    const r = await receiver(() => ({ status: 302, headers: { location: elsewhere.url('/stolen') } }));
    const err = await deliver(r.url(), '{}', options('127.0.0.1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeliveryRefused);
    expect((err as Error).message).toBe('the receiver answered 302, a redirect; redirects are not followed');
    expect(r.received).toHaveLength(1);
    expect(elsewhere.received).toEqual([]);
  });

  it('fails, to be tried again, on an error status, a refused connection or no answer in time, naming no address', async () => {
    const failing = await receiver(() => ({ status: 503 }));
    const e503 = await deliver(failing.url(), '{}', options('127.0.0.1')).catch((e: unknown) => e);
    expect(e503).not.toBeInstanceOf(DeliveryRefused);
    expect((e503 as Error).message).toBe('the receiver answered 503');

    const closed = await receiver();
    const url = closed.url();
    await closed.close();
    const refused = await deliver(url, '{}', options('127.0.0.1')).catch((e: unknown) => e);
    expect((refused as Error).message).toBe('the connection failed (ECONNREFUSED)');

    // A receiver that never answers: the request is held open.
    const hang = http.createServer(() => undefined);
    hang.listen(0, '127.0.0.1');
    await once(hang, 'listening');
    try {
      const { port } = hang.address() as { port: number };
      const timedOut = await deliver(`http://127.0.0.1:${port}/`, '{}', options('127.0.0.1', { timeoutMs: 300 })).catch((e: unknown) => e);
      expect((timedOut as Error).message).toBe('no answer within 300 ms');
    } finally {
      hang.closeAllConnections();
      hang.close();
    }
  });

  it('counts the name\'s resolution within the attempt\'s time', async () => {
    const never = () => new Promise<LookupAddress[]>(() => undefined);
    const err = await deliver('http://hook.test/', '{}', options('hook.test', { resolve: never, timeoutMs: 200 })).catch((e: unknown) => e);
    expect((err as Error).message).toBe('no answer within 200 ms');
    expect(err).not.toBeInstanceOf(DeliveryRefused);
  });

  it('refuses a host no longer in CALLBACK_HOSTS', async () => {
    const r = await receiver();
    await expect(deliver(r.url(), '{}', options('hooks.example.com'))).rejects.toThrow(DeliveryRefused);
    expect(r.received).toEqual([]);
  });
});

describe('callbacks through the API and an executor', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({
      executors: 1,
      env: { CALLBACK_HOSTS: '127.0.0.1', CALLBACK_SECRET: SECRET, CALLBACK_BACKOFF_MS: '50' },
    });
    stack.writeFile('sample.csv', sampleCsv());
  });
  afterAll(() => stack?.stop());

  const submit = (url: string) => request(stack.url).post('/api/v1/jobs').send({ file: 'sample.csv', callback: { url } });
  const settled = (id: string) =>
    waitFor(
      async () => {
        const job = await stack.store.get(id);
        return job?.callback && job.callback.status !== 'pending' ? job : undefined;
      },
      { what: `the callback of ${id} to settle` },
    );

  it('a receiver that fails twice, then accepts: one accepted delivery with a valid signature, 3 attempts on the job', async () => {
    const r = await receiver((n) => ({ status: n <= 2 ? 500 : 200 }));
    const submitted = jobOf(await submit(r.url('/hook?from=decisum')).expect(202));
    expect(submitted.callback).toEqual({ url: r.url('/hook?from=decisum'), status: 'pending', attempts: 0 });

    const job = await settled(submitted.id);
    expect(job.callback).toEqual({ url: r.url('/hook?from=decisum'), status: 'delivered', attempts: 3, lastError: 'the receiver answered 500' });
    expect(r.received.map((x) => x.status)).toEqual([500, 500, 200]);
    // Nothing is left to deliver: no second accepted delivery can follow.
    expect(await stack.store.nextCallbackDue()).toBeUndefined();

    const accepted = r.received[2];
    expect(accepted.url).toBe('/hook?from=decisum');
    const { t, valid } = verify(accepted.headers['decisum-signature'], accepted.body);
    expect(valid).toBe(true);
    expect(Math.abs(t - Date.now() / 1000)).toBeLessThan(300);
    // Signed with another secret, it would not verify.
    expect(verify(accepted.headers['decisum-signature'], accepted.body, 'another-secret-0123456789').valid).toBe(false);
    // The body is the finished job, as the API shows it but for the callback's own record.
    const body = JSON.parse(accepted.body) as Job;
    expectSums(body, SAMPLE_EXPECTED);
    const shown: Partial<Job> = jobOf(await request(stack.url).get(`/api/v1/jobs/${job.id}`).expect(200));
    delete shown.callback;
    expect(body).toEqual(shown);
  });

  it('a receiver that redirects: not followed; the callback fails at once', async () => {
    const elsewhere = await receiver();
    const r = await receiver(() => ({ status: 307, headers: { location: elsewhere.url('/elsewhere') } }));
    const job = await settled(jobOf(await submit(r.url()).expect(202)).id);
    expect(job.callback).toMatchObject({ status: 'failed', attempts: 1, lastError: 'the receiver answered 307, a redirect; redirects are not followed' });
    expect(elsewhere.received).toEqual([]);
  });

  it('refuses at submission a host not in CALLBACK_HOSTS, a private address, or a scheme other than http(s), recording nothing', async () => {
    const before = (await stack.store.list({ limit: 1000 })).jobs.length;
    const cases: [string, string][] = [
      ['https://hooks.example.com/x', 'callback host hooks.example.com is not in CALLBACK_HOSTS'],
      ['http://10.0.0.5/x', 'callback host 10.0.0.5 is not in CALLBACK_HOSTS'],
      ['http://169.254.169.254/latest/meta-data', 'callback host 169.254.169.254 is not in CALLBACK_HOSTS'],
      ['http://[::1]:9/x', 'callback host [::1] is not in CALLBACK_HOSTS'],
      ['file:///etc/passwd', 'callback url file:///etc/passwd must be http:// or https://'],
    ];
    for (const [url, detail] of cases) {
      const res = await submit(url).expect(400);
      expect(problemOf(res)).toMatchObject({ code: 'CALLBACK_NOT_ALLOWED', detail });
    }
    expect(problemOf(await request(stack.url).post('/api/v1/jobs').send({ file: 'sample.csv', callback: { url: 'http://127.0.0.1/', secret: 'x' } }).expect(400)).code).toBe('VALIDATION');
    expect((await stack.store.list({ limit: 1000 })).jobs).toHaveLength(before);
  });

  it('the same Idempotency-Key with another callback is a different request', async () => {
    const r = await receiver();
    await submit(r.url('/a')).set('Idempotency-Key', 'cb-1').expect(202);
    await submit(r.url('/a')).set('Idempotency-Key', 'cb-1').expect(202).expect('Idempotent-Replayed', 'true');
    const res = await submit(r.url('/b')).set('Idempotency-Key', 'cb-1').expect(422);
    expect(problemOf(res).code).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it('gives up once CALLBACK_RETRY_FOR_SECONDS have passed since the job finished', async () => {
    const r = await receiver(() => ({ status: 500 }));
    // A prefix of its own, so the stack's executor leaves it to this dispatcher, told to give up at once.
    const store = new JobStore(stack.redis, { prefix: `test-giveup-${randomUUID().slice(0, 8)}`, ttlSeconds: 60, leaseMs: 1000 });
    const { job } = await store.create({ file: 'sample.csv', options: { step: 10, offset: 0 }, callbackUrl: r.url() });
    await store.cancel(job.id);
    const dispatcher = new CallbackDispatcher(
      { store, logger: createLogger('test', 'silent') },
      { hosts: parseCallbackHosts('127.0.0.1'), secret: SECRET, backoffMs: 50, retryForMs: 0, timeoutMs: 2000 },
    );
    dispatcher.start();
    try {
      const given = await waitFor(async () => {
        const now = await store.get(job.id);
        return now?.callback?.status === 'pending' ? undefined : now;
      });
      expect(given.callback).toMatchObject({ status: 'failed', attempts: 1, lastError: 'the receiver answered 500; given up after 1 attempts' });
      // A cancelled job calls back too: its body says so.
      expect((JSON.parse(r.received[0].body) as Job).status).toBe('cancelled');
    } finally {
      await dispatcher.stop();
      await store.destroy();
    }
  });
});

describe('an executor killed after the result, before the webhook', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    const { redisUrl, amqpUrl } = await serviceUrls();
    cluster = await Cluster.start({ redisUrl, amqpUrl, apis: 1, env: { CALLBACK_HOSTS: '127.0.0.1', CALLBACK_SECRET: SECRET, CALLBACK_BACKOFF_MS: '50' } });
    cluster.writeFile('sample.csv', sampleCsv());
  }, 90_000);
  afterAll(() => cluster?.stop());

  it('still delivers it: the next executor finds the callback due in Redis', async () => {
    const r = await receiver();
    const crashing = await cluster.addExecutor({}, 'executor-crash-after-write');
    const res = await cluster.submit({ file: 'sample.csv', callback: { url: r.url() } });
    expect(res.status).toBe(202);
    const id = jobOf(res).id;
    expect((await crashing.exited).signal).toBe('SIGKILL');
    const written = await cluster.store.get(id);
    expectSums(written!, SAMPLE_EXPECTED);
    expect(written!.callback).toMatchObject({ status: 'pending', attempts: 0 });
    expect(r.received).toEqual([]);

    const next = await cluster.addExecutor();
    const [delivery] = await r.until(1);
    expect(verify(delivery.headers['decisum-signature'], delivery.body).valid).toBe(true);
    expect((JSON.parse(delivery.body) as Job).id).toBe(id);
    await next.waitForLog((l) => l.jobId === id && l.msg === 'callback delivered', { what: 'the delivery to be recorded' });
    expect((await cluster.store.get(id))?.callback).toMatchObject({ status: 'delivered', attempts: 1 });
    expect(r.received).toHaveLength(1);
  });
});
