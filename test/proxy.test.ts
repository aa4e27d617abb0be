import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Cluster } from './support/processes';
import { EventClient } from './support/events';
import { freePort, spawnServer, stopChild } from './support/servers';
import { serviceUrls } from './support/services';
import { SAMPLE } from './support/sample';
import { waitFor } from './support/wait';

/**
 * deploy/caddy/Caddyfile, the reverse proxy compose puts in front of the API replicas, run with
 * Debian's Caddy in front of a real API process and of test servers: it passes the API through,
 * keeps /metrics to itself, and streams request and response bodies without buffering them.
 */

const CADDYFILE = path.resolve(__dirname, '..', 'deploy', 'caddy', 'Caddyfile');
const hasCaddy = spawnSync('caddy', ['version']).status === 0;
if (!hasCaddy) {
  console.warn('proxy.test.ts: caddy is not installed, skipping: apt-get install -y caddy');
}

interface Proxy {
  url: string;
  stop(): Promise<void>;
}

/** The shipped Caddyfile, with the upstream name and port and its own listening port from the environment. */
async function startProxy(apiPort: number): Promise<Proxy> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-caddy-'));
  const log = path.join(dir, 'caddy.log');
  const child = spawnServer(
    'caddy',
    ['run', '--config', CADDYFILE, '--adapter', 'caddyfile'],
    { PATH: process.env.PATH, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir, PROXY_PORT: String(port), API_HOST: 'localhost', API_PORT: String(apiPort) },
    log,
  );
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    // Caddy lets open requests finish before it exits; a test's held stream must not keep it long.
    await stopChild(child, 'SIGTERM', 5000);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  // Listening is enough: a request would reach the upstream, which may hold it open.
  await waitFor(
    async () => {
      if (child.exitCode !== null) { throw new Error(`caddy exited: ${fs.readFileSync(log, 'utf8')}`); }
      const socket = net.connect(port, '127.0.0.1');
      try {
        await once(socket, 'connect');
        return true;
      } finally {
        socket.destroy();
      }
    },
    { timeoutMs: 20_000, intervalMs: 100, what: `caddy on ${port}` },
  ).catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  return { url, stop };
}

/** A server for one request at a time; the handler keeps the response open as long as it likes. */
async function testServer(handler: http.RequestListener): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Resolves with the first body bytes of a response, while the server still holds the rest. */
function firstChunk(url: string): Promise<{ res: http.IncomingMessage; chunk: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        res.once('data', (chunk: Buffer) => resolve({ res, chunk: chunk.toString('utf8') }));
        res.once('end', () => reject(new Error('the response ended before any body arrived')));
      })
      .on('error', reject);
  });
}

(hasCaddy ? describe : describe.skip)('the reverse proxy (deploy/caddy/Caddyfile)', () => {
  it('is a valid Caddy configuration', () => {
    const res = spawnSync('caddy', ['validate', '--config', CADDYFILE, '--adapter', 'caddyfile'], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: os.tmpdir() } });
    expect({ status: res.status, out: res.stdout + res.stderr }).toEqual({ status: 0, out: expect.stringContaining('Valid configuration') as string });
  });

  describe('in front of a real API', () => {
    let cluster: Cluster;
    let proxy: Proxy;

    beforeAll(async () => {
      const { redisUrl, amqpUrl } = await serviceUrls();
      cluster = await Cluster.start({ redisUrl, amqpUrl, apis: 1, executors: 1 });
      proxy = await startProxy(Number(new URL(cluster.url).port));
    }, 60_000);

    afterAll(async () => {
      await proxy?.stop();
      await cluster?.stop();
    });

    it('passes an upload, a submission and the active count through, and keeps /metrics to itself', async () => {
      const sample = fs.readFileSync(SAMPLE);
      const put = await fetch(`${proxy.url}/api/v1/files/local/sample.csv`, { method: 'PUT', body: sample });
      expect(put.status).toBe(201);
      expect(fs.readFileSync(path.join(cluster.dataDir, 'sample.csv'))).toEqual(sample);

      const submitted = await cluster.submit({ file: 'sample.csv' }, {}, proxy.url);
      expect(submitted.status).toBe(202);
      const job = await cluster.waitForJob((submitted.body as { id: string }).id);
      expect(job.status).toBe('succeeded');
      const active = await fetch(`${proxy.url}/api/v1/jobs/active`);
      expect(await active.json()).toEqual(await cluster.active());

      expect((await fetch(`${proxy.url}/metrics`)).status).toBe(404);
      // Nor does the API's public port serve it: only METRICS_PORT does.
      expect((await fetch(`${cluster.url}/metrics`)).status).toBe(404);
    });

    it('carries the API\'s event stream as the changes happen, and ?wait until the job is final', async () => {
      const events = await EventClient.open(proxy.url);
      try {
        expect(events.status).toBe(200);
        await events.next('active');
        const submitted = await cluster.submit({ file: 'sample.csv' }, {}, proxy.url);
        const id = (submitted.body as { id: string }).id;
        const waited = await fetch(`${proxy.url}/api/v1/jobs/${id}?wait=30`);
        expect(((await waited.json()) as { status: string }).status).toBe('succeeded');
        await events.until((c) => (c.jobs(id).some((j) => j.status === 'succeeded') ? true : undefined));
        expect(events.jobs(id).map((j) => j.status)).toEqual(['queued', 'running', 'succeeded']);
      } finally {
        events.close();
      }
    });
  });

  describe('streaming', () => {
    let release: () => void;
    let server: { port: number; close(): Promise<void> };
    let proxy: Proxy;
    let received: Promise<string>;

    afterEach(async () => {
      release?.();
      await proxy?.stop();
      await server?.close();
    });

    const hold = () => new Promise<void>((resolve) => (release = resolve));

    it.each([
      ['each Server-Sent Event', '/api/v1/events', { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' }, 'data: {"active":1}\n\n', 'data: {"active":0}\n\n'],
      ['a download of known length', '/api/v1/files/local/big.csv', { 'Content-Type': 'text/csv', 'Content-Length': '20' }, 'a,b\n1,2\n', '3,4\n5,6\n7,8\n'],
    ])('forwards %s as it is written, not when the response ends', async (_what, url, headers, first, rest) => {
      server = await testServer((_req, res) => {
        res.writeHead(200, headers);
        res.write(first);
        void hold().then(() => res.end(rest));
      });
      proxy = await startProxy(server.port);
      const { res, chunk } = await firstChunk(`${proxy.url}${url}`);
      expect(res.headers['content-type']).toBe(headers['Content-Type']);
      expect(chunk).toBe(first);
    });

    it('streams an upload to the API as it is sent, not once it is complete', async () => {
      let firstPart: (s: string) => void;
      received = new Promise<string>((resolve) => (firstPart = resolve));
      server = await testServer((req, res) => {
        req.once('data', (chunk: Buffer) => firstPart(chunk.toString('utf8')));
        req.on('end', () => res.end('ok'));
        req.resume();
      });
      proxy = await startProxy(server.port);
      const upload = http.request(`${proxy.url}/api/v1/files/local/up.csv`, { method: 'PUT', headers: { 'Content-Type': 'text/csv' } });
      const answered = new Promise<number>((resolve, reject) => {
        upload.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        upload.on('error', reject);
      });
      upload.write('a,b\n1,2\n');
      // The client still holds the rest: the server has the first part already.
      expect(await received).toBe('a,b\n1,2\n');
      upload.end('3,4\n');
      expect(await answered).toBe(200);
    });
  });
});
