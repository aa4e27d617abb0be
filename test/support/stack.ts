import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import type { Redis } from 'ioredis';
import {
  JobStore,
  createLogger,
  createRedis,
  isFinal,
  jobStoreOptions,
  loadConfig,
  openServices,
  topologyFor,
  type Broker,
  type Config,
  type Job,
  type JobFeed,
  type Storage,
} from '@decisum/shared';
import { startApi } from '../../api/src/start';
import type { OutboxSweeper } from '../../api/src/sweeper';
import type { Executor } from '../../executor/src/executor';
import { startExecutor } from '../../executor/src/start';
import { serviceUrls } from './services';
import { waitFor } from './wait';
import { freePort } from './servers';
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
  /** The API's metrics port (METRICS_PORT), apart from the public one. */
  metricsUrl: string;
  config: Config;
  env: Record<string, string>;
  dataDir: string;
  store: JobStore;
  storage: Storage;
  broker: Broker;
  redis: Redis;
  /** The API's reader of job events. */
  feed: JobFeed;
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
 * DECISUM_PREFIX and DATA_DIR: test files never see each other's jobs, queues or files. Each is
 * built as its process builds it (openServices, then startApi or startExecutor), with its own clients.
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
    METRICS_PORT: String(await freePort()),
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
  const closers: (() => Promise<void> | void)[] = [];

  const services = await openServices(config, logger, { failFast: true, feed: true });
  closers.push(() => services.close());
  // Tests submit at once: wait for the broker rather than meet a 503.
  await services.broker.start();
  const api = await startApi(services, config, logger, { host: '127.0.0.1' });
  closers.push(() => api.stop());
  const { url, sweeper } = api;
  if (!api.metricsUrl) { throw new Error('the API did not open its metrics port'); }
  const metricsUrl = api.metricsUrl;
  const { store, storage, broker, redis } = services;
  const feed = services.feed!;

  const workerEntry = await builtWorkerEntry();
  const executors: Executor[] = [];
  const addExecutor = async (): Promise<Executor> => {
    const own = await openServices(config, logger);
    const running = await startExecutor(own, config, logger, { workerEntry });
    executors.push(running.executor);
    closers.push(async () => {
      await running.stop(0);
      await own.close();
    });
    return running.executor;
  };
  for (let i = 0; i < (options.executors ?? 1); i++) { await addExecutor(); }

  return {
    url,
    metricsUrl,
    config,
    env,
    dataDir,
    store,
    storage,
    broker,
    redis,
    feed,
    sweeper,
    executors,
    addExecutor,
    async queueDepth() {
      const conn = await amqp.connect(config.amqpUrls[0]);
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
      await deleteTopology(config.amqpUrls[0], topology);
      const cleanup = createRedis(config.redisUrl, logger);
      await new JobStore(cleanup, jobStoreOptions(config)).destroy();
      cleanup.disconnect();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

