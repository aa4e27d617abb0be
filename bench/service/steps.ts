/*
 * `npm run bench:service -- --steps`: each step of one job's way through decisum, alone, in this
 * process, with the product's own code (shared/, api/src, executor/src) against the same Redis and
 * RabbitMQ under a fresh prefix: wall time per step (median and mean of --step-runs runs one after
 * another), CPU per step (this process, all threads) and the garbage collections it caused. What a
 * job pays for, step by step, without the other steps' noise.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import pino from 'pino';
import amqp from 'amqplib';
import {
  Broker,
  JobFeed,
  JobStore,
  JobSubmissionSchema,
  createLogger,
  createRedis,
  createStorage,
  decodeMessage,
  encodeMessage,
  jobStoreOptions,
  loadConfig,
  parseLocation,
  topologyFor,
  type Job,
  type JobResult,
} from '@decisum/shared';
import { createApp } from '../../api/src/app';
import { parse } from '../../api/src/validate';
import { sumLocation } from '../../executor/src/compute';
import { createSummer, loadFastPath } from '../../executor/src/engine';
import { deleteTopology } from '../../test/support/amqp';
import { SAMPLE } from '../../test/support/sample';
import { HttpClient, percentile } from './load';
import { cpuMs, listenerPid } from './procs';
import { SAMPLE_FILE } from './systems';

interface StepResult {
  name: string;
  p50Us: number;
  meanUs: number;
  cpuUs: number;
  gcPerThousand: number;
  gcUs: number;
}

let gcCount = 0;
let gcMs = 0;
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcCount++;
    gcMs += e.duration;
  }
});

/** Runs fn `runs` times one after another (after a tenth as many unmeasured) and measures it. */
async function step(name: string, runs: number, fn: (i: number) => unknown): Promise<StepResult> {
  for (let i = 0; i < Math.ceil(runs / 10); i++) { await fn(-1 - i); }
  const times: number[] = [];
  const gc0 = { n: gcCount, ms: gcMs };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn(i);
    times.push(performance.now() - t);
  }
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  // GC entries reach the observer in a later task; let them in before reading the counters.
  await new Promise((r) => setTimeout(r, 50));
  times.sort((a, b) => a - b);
  return {
    name,
    p50Us: percentile(times, 50) * 1000,
    meanUs: (wall * 1000) / runs,
    cpuUs: (cpu.user + cpu.system) / runs,
    gcPerThousand: ((gcCount - gc0.n) * 1000) / runs,
    gcUs: ((gcMs - gc0.ms) * 1000) / runs,
  };
}

export async function runSteps(servers: { redisUrl: string; amqpUrl: string }, runs: number): Promise<string> {
  const prefix = `svcbench-steps-${randomUUID().slice(0, 8)}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-svcbench-steps-'));
  fs.copyFileSync(SAMPLE, path.join(dataDir, SAMPLE_FILE));
  const config = loadConfig({ REDIS_URL: servers.redisUrl, AMQP_URL: servers.amqpUrl, DATA_DIR: dataDir, DECISUM_PREFIX: prefix, LOG_LEVEL: 'silent' });
  const logger = createLogger('svcbench', 'silent');
  const redis = createRedis(config.redisUrl, logger, { failFast: true });
  const store = new JobStore(redis, jobStoreOptions(config));
  // The app's ?wait and event stream read from it, as in the API process.
  const feed = new JobFeed(createRedis(config.redisUrl, logger), prefix, logger);
  await feed.start();
  const topology = topologyFor(prefix, config.jobs.maxAttempts);
  const broker = new Broker({ urls: config.amqpUrls, topology, logger });
  const { storage, clients } = createStorage(config);
  const logFile = path.join(dataDir, 'log.jsonl');
  const fileLogger = pino({ name: 'api', level: 'info', base: { pid: process.pid, name: 'api' } }, pino.destination({ dest: logFile, sync: true }));
  const client = new HttpClient(1);
  const servers_: http.Server[] = [];
  const results: StepResult[] = [];
  let probe: DeliveryProbe | undefined;
  let burst = '';
  gcObserver.observe({ entryTypes: ['gc'] });
  try {
    await broker.start();
    loadFastPath();
    const loc = parseLocation(SAMPLE_FILE);
    const bytes = fs.readFileSync(SAMPLE);
    const body = JSON.stringify({ file: SAMPLE_FILE });
    const options = { step: 10, offset: 0 };
    const noop = () => undefined;
    const sum = (threads: number) => () =>
      sumLocation(loc, options, {
        storage,
        threads,
        signal: new AbortController().signal,
        onProgress: noop,
        onRetry: noop,
      });
    const result: JobResult = await sum(1)();

    // HTTP: a bare node:http server and decisum's express app, each answering in this process.
    const listen = async (server: http.Server) => {
      servers_.push(server);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    };
    const bare = await listen(http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}')));
    const app = await listen(http.createServer(createApp({ store, broker, storage, logger: fileLogger, feed, dataDir: config.dataDir })));

    results.push(await step('HTTP GET round trip, bare node:http (client + server in this process)', runs, () => client.request('GET', `${bare}/healthz`)));
    results.push(await step('HTTP GET /healthz round trip, decisum\'s express app', runs, () => client.request('GET', `${app}/healthz`)));
    results.push(await step('POST /api/v1/jobs round trip, the whole submission (express app, real store and broker, log to a file)', runs, () => client.request('POST', `${app}/api/v1/jobs`, body)));
    results.push(await step('  validation: zod JobSubmissionSchema + parseLocation', runs, () => parseLocation(parse(JobSubmissionSchema, { file: SAMPLE_FILE }, 'body').file)));
    results.push(await step('  stat of the file at submission (realpath + stat)', runs, () => storage.stat(loc)));
    const ids: string[] = [];
    results.push(await step('  Redis: create script + HGETALL (store.create)', runs, async (i) => {
      const { job } = await store.create({ file: SAMPLE_FILE, options });
      if (i >= 0) { ids.push(job.id); }
    }));
    results.push(await step('  AMQP: publish + confirm, one at a time (broker.publish)', runs, (i) => broker.publish({ id: ids[Math.max(0, i)], file: SAMPLE_FILE, options })));
    results.push(await step('  Redis: ZREM from the outbox (store.markPublished)', runs, (i) => store.markPublished(ids[Math.max(0, i)])));
    results.push(await step('  one log line with a child logger, to a file (pino, sync)', runs, (i) => fileLogger.child({ jobId: ids[Math.max(0, i)] }).info({ file: SAMPLE_FILE, options }, 'job accepted')));
    for (const noDelay of [false, true]) {
      probe = await DeliveryProbe.open(config.amqpUrls[0], `${prefix}.probe`, noDelay);
      const how = noDelay ? 'TCP_NODELAY' : 'amqplib default socket, Nagle on';
      results.push(await step(`AMQP: publish + confirm, a consumer on another connection (${how})`, runs, () => probe!.publish()));
      results.push(await step(`AMQP: publish + confirm + delivery + ack (${how})`, runs, () => probe!.roundTrip()));
      await probe.close();
      probe = undefined;
    }
    probe = await DeliveryProbe.open(config.amqpUrls[0], `${prefix}.probe`, true, BURST_PREFETCH);
    burst = await brokerBurst(probe, config.amqpUrls[0], runs * 10);
    await probe.close();
    probe = undefined;
    results.push(await step('  decode the message (JSON + zod)', runs, () => decodeMessage(encodeMessage({ id: ids[0], file: SAMPLE_FILE, options }))));
    results.push(await step('  Redis: claim script', runs, (i) => (i >= 0 ? store.claim(ids[i]) : store.get(ids[0]))));
    results.push(await step('  the executor\'s read and sum, as it runs now (EXECUTOR_THREADS 2: storage.open, sumObject; below 32 MiB on this thread)', runs, sum(2)));
    results.push(await step('  the same with EXECUTOR_THREADS 1', runs, sum(1)));
    results.push(await step('  engine alone on the file\'s bytes in memory (createSummer, WebAssembly fast path)', runs, () => {
      const s = createSummer(options);
      s.push(bytes);
      return s.finish();
    }));
    results.push(await step('  engine alone, without the WebAssembly fast path', runs, () => {
      const s = createSummer(options, { simd: false });
      s.push(bytes);
      return s.finish();
    }));
    results.push(await step('  engine alone, read buffer 256 KiB instead of 1 MiB', runs, () => {
      const s = createSummer(options, { bufferBytes: 256 << 10 });
      s.push(bytes);
      return s.finish();
    }));
    results.push(await step('  fs.promises.readFile of the file', runs, () => fs.promises.readFile(path.join(dataDir, SAMPLE_FILE))));
    results.push(await step('  Redis: finish script (store.finish)', runs, (i) => (i >= 0 ? store.finish(ids[i], 1, { result }) : store.get(ids[0]))));
    results.push(await step('GET /api/v1/jobs/{id} round trip (express app, HGETALL)', runs, (i) => client.request('GET', `${app}/api/v1/jobs/${ids[Math.max(0, i)]}`)));
    results.push(await step('GET /api/v1/jobs/active round trip (express app, MULTI ZCARD ZCOUNT)', runs, () => client.request('GET', `${app}/api/v1/jobs/active`)));
    const got: Job | undefined = await store.get(ids[0]);
    if (got?.status !== 'succeeded') { throw new Error(`steps: the job ended ${got?.status}`); }
  } finally {
    gcObserver.disconnect();
    client.close();
    for (const s of servers_) { s.closeAllConnections(); s.close(); }
    await probe?.close();
    await broker.close();
    await feed.close();
    await deleteTopology(config.amqpUrls[0], topology).catch(() => undefined);
    await store.destroy().catch(() => undefined);
    redis.disconnect();
    for (const c of clients) { c.destroy(); }
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  const f = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
  return [
    '',
    `each step alone, ${runs} runs one after another in this process (µs; CPU of this process, all threads; GCs it saw):`,
    '',
    '| step | p50 µs | mean µs | CPU µs | GCs per 1000 | GC µs |',
    '|---|---:|---:|---:|---:|---:|',
    ...results.map((r) => `| ${r.name} | ${f(r.p50Us)} | ${f(r.meanUs)} | ${f(r.cpuUs)} | ${f(r.gcPerThousand)} | ${f(r.gcUs)} |`),
    '',
    burst,
    '',
  ].join('\n');
}

const BURST_PREFETCH = 200;

/** The broker's own CPU per message when many are in flight at once (RabbitMQ being a shared server, others' load counts too). */
async function brokerBurst(probe: DeliveryProbe, amqpUrl: string, n: number): Promise<string> {
  const pid = listenerPid(Number(new URL(amqpUrl).port || 5672));
  const cpu0 = pid === undefined ? undefined : cpuMs(pid);
  const t0 = performance.now();
  await probe.burst(n);
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = pid === undefined ? undefined : cpuMs(pid);
  const perMessage = cpu0 === undefined || cpu1 === undefined ? 'unknown' : `${(((cpu1 - cpu0) * 1000) / n).toFixed(0)} µs`;
  return `AMQP burst: ${n} messages published at once with confirms, delivered (prefetch ${BURST_PREFETCH}) and acked one by one (TCP_NODELAY): ${(n / seconds).toFixed(0)} messages/s; RabbitMQ CPU per message ${perMessage}`;
}

/**
 * A quorum queue of its own, a publisher (confirm channel) and a consumer on two connections, as
 * the API and an executor have; noDelay sets TCP_NODELAY on both sockets (amqplib leaves Nagle on).
 */
class DeliveryProbe {
  private readonly waiting = new Map<string, () => void>();

  private constructor(
    private readonly conns: amqp.ChannelModel[],
    private readonly pub: amqp.ConfirmChannel,
    private readonly queue: string,
  ) {}

  static async open(amqpUrl: string, queue: string, noDelay: boolean, prefetch = 2): Promise<DeliveryProbe> {
    const conns = [await amqp.connect(amqpUrl, { noDelay }), await amqp.connect(amqpUrl, { noDelay })];
    const pub = await conns[0].createConfirmChannel();
    await pub.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    const sub = await conns[1].createChannel();
    await sub.prefetch(prefetch);
    const probe = new DeliveryProbe(conns, pub, queue);
    await sub.consume(queue, (msg) => {
      if (!msg) { return; }
      sub.ack(msg);
      probe.waiting.get(String(msg.properties.messageId))?.();
    });
    return probe;
  }

  /** Resolves on the broker's confirm. */
  publish(id = randomUUID()): Promise<void> {
    return new Promise<void>((resolve, reject) =>
      this.pub.sendToQueue(this.queue, Buffer.from('{}'), { persistent: true, messageId: id }, (err: unknown) => (err ? reject(new Error('nacked')) : resolve())),
    );
  }

  /** n messages published at once (confirms in flight together), resolved when all were delivered and acked. */
  async burst(n: number): Promise<void> {
    const ids = Array.from({ length: n }, () => randomUUID());
    const delivered = ids.map((id) => new Promise<void>((resolve) => this.waiting.set(id, resolve)));
    await Promise.all([...ids.map((id) => this.publish(id)), ...delivered]);
    for (const id of ids) { this.waiting.delete(id); }
  }

  /** Resolves once the confirm came and the consumer got the message (and acked it). */
  async roundTrip(): Promise<void> {
    const id = randomUUID();
    const delivered = new Promise<void>((resolve) => this.waiting.set(id, resolve));
    await Promise.all([this.publish(id), delivered]);
    this.waiting.delete(id);
  }

  async close(): Promise<void> {
    await this.pub.deleteQueue(this.queue).catch(() => undefined);
    for (const c of this.conns) { await c.close().catch(() => undefined); }
  }
}
