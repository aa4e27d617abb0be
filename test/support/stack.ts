import { once } from 'node:events';
import fs from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import type { Redis } from 'ioredis';
import {
  Broker,
  JobStore,
  createLogger,
  createRedis,
  createStorage,
  isFinal,
  jobStoreOptions,
  loadConfig,
  topologyFor,
  type Config,
  type Job,
  type Storage,
} from '@decisum/shared';
import { createApp } from '../../api/src/app';
import { createMetrics } from '../../api/src/metrics';
import { OutboxSweeper } from '../../api/src/sweeper';
import { Executor, executorOptions } from '../../executor/src/executor';
import { serviceUrls } from './services';
import { waitFor } from './wait';
import { deleteTopology } from './amqp';
import { builtWorkerEntry } from './worker';

export interface StackOptions {
  /** In-process executors; 0 for an API alone. */
  executors?: number;
  /** Extra environment, read by loadConfig like a real process would. */
  env?: Record<string, string>;
}

export interface Stack {
  url: string;
  config: Config;
  env: Record<string, string>;
  dataDir: string;
  store: JobStore;
  storage: Storage;
  broker: Broker;
  redis: Redis;
  sweeper: OutboxSweeper;
  executors: Executor[];
  addExecutor(): Promise<Executor>;
  /** Messages ready in the work queue. */
  queueDepth(): Promise<number>;
  /** Writes a file under DATA_DIR and returns its location. */
  writeFile(rel: string, content: string | Buffer): string;
  waitForJob(id: string, timeoutMs?: number): Promise<Job>;
  stop(): Promise<void>;
}


/**
 * The real API and executors in this process, against the real Redis and RabbitMQ, under a fresh
 * DECISUM_PREFIX and DATA_DIR: test files never see each other's jobs, queues or files.
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const { redisUrl, amqpUrl } = await serviceUrls();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-test-'));
  const env: Record<string, string> = {
    REDIS_URL: redisUrl,
    AMQP_URL: amqpUrl,
    DATA_DIR: dataDir,
    DECISUM_PREFIX: `test-${randomUUID().slice(0, 8)}`,
    PORT: '0',
    EXECUTOR_METRICS_PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    HEARTBEAT_MS: '200',
    LEASE_MS: '2000',
    RETRY_BACKOFF_MS: '50',
    SWEEP_INTERVAL_MS: '200',
    PUBLISH_GRACE_MS: '1000',
    SHUTDOWN_GRACE_MS: '2000',
    ...options.env,
  };
  const config = loadConfig(env);
  const logger = createLogger('test', config.logLevel);
  const topology = topologyFor(config.prefix, config.jobs.maxAttempts);
  const storeOptions = jobStoreOptions(config);
  const closers: (() => Promise<void> | void)[] = [];

  const redis = createRedis(config.redisUrl, logger, { failFast: true });
  closers.push(() => redis.disconnect());
  const store = new JobStore(redis, storeOptions);
  const broker = new Broker({ url: config.amqpUrl, topology, logger });
  closers.push(() => broker.close());
  await broker.start();
  const { storage, clients } = createStorage(config);
  const workerEntry = await builtWorkerEntry();
  closers.push(() => clients.forEach((c) => c.destroy()));
  const sweeper = new OutboxSweeper({ store, broker, logger }, { intervalMs: config.jobs.sweepIntervalMs, graceMs: config.jobs.publishGraceMs });
  sweeper.start();
  closers.push(() => sweeper.stop());

  const app = createApp({
    store,
    broker,
    storage,
    logger,
    metrics: createMetrics(store),
    ready: { redis: async () => (await redis.ping()) === 'PONG' },
  });
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const executors: Executor[] = [];
  const addExecutor = async (): Promise<Executor> => {
    const eRedis = createRedis(config.redisUrl, logger);
    const eBroker = new Broker({ url: config.amqpUrl, topology, logger });
    const executor = new Executor(
      { store: new JobStore(eRedis, storeOptions), broker: eBroker, storage, logger },
      { ...executorOptions(config), workerEntry },
    );
    await executor.start();
    executors.push(executor);
    closers.push(async () => {
      await executor.stop(0);
      await eBroker.close();
      eRedis.disconnect();
    });
    return executor;
  };
  for (let i = 0; i < (options.executors ?? 1); i++) { await addExecutor(); }

  return {
    url,
    config,
    env,
    dataDir,
    store,
    storage,
    broker,
    redis,
    sweeper,
    executors,
    addExecutor,
    async queueDepth() {
      const conn = await amqp.connect(config.amqpUrl);
      try {
        const ch = await conn.createChannel();
        return (await ch.checkQueue(topology.jobs)).messageCount;
      } finally {
        await conn.close();
      }
    },
    writeFile(rel, content) {
      const full = path.join(dataDir, rel);
      fs.mkdirSync(path.dirname(full), { recursive: true });
      fs.writeFileSync(full, content);
      return rel;
    },
    waitForJob(id, timeoutMs = 30_000) {
      return waitFor(
        async () => {
          const job = await store.get(id);
          return job && isFinal(job.status) ? job : undefined;
        },
        { timeoutMs, what: `job ${id} to finish` },
      );
    },
    async stop() {
      for (const close of closers.reverse()) { await close(); }
      await deleteTopology(config.amqpUrl, topology);
      const cleanup = createRedis(config.redisUrl, logger);
      await new JobStore(cleanup, storeOptions).destroy();
      cleanup.disconnect();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

