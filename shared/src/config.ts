import path from 'node:path';
import { z } from 'zod';
import { DEFAULT_READ_POLICY } from './storage/backoff';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number({ message: 'must be a number' }).int('must be a whole number').min(min).max(max);
const isUrl = (v: string, protocols: string[]) => {
  try {
    return protocols.includes(new URL(v).protocol);
  } catch {
    return false;
  }
};
const url = (protocols: string[]) => z.string().refine((v) => isUrl(v, protocols), `must be a ${protocols.join(' or ')}// URL`);
/** One URL, or several separated by commas (the nodes of a cluster). */
const urls = (protocols: string[]) =>
  z
    .string()
    .transform((v) => v.split(',').map((u) => u.trim()))
    .refine((list) => list.every((u) => isUrl(u, protocols)), `must be ${protocols.join(' or ')}// URLs separated by commas`);

const schema = z.object({
  PORT: int(0, 65535).default(8080),
  REDIS_URL: url(['redis:', 'rediss:']).default('redis://127.0.0.1:6379'),
  AMQP_URL: urls(['amqp:', 'amqps:']).default(['amqp://guest:guest@127.0.0.1:5672']),
  DATA_DIR: z.string().min(1).default('./data'),
  S3_ENDPOINT: url(['http:', 'https:']).optional(),
  S3_REGION: z.string().min(1).optional(),
  AWS_REGION: z.string().min(1).optional(),
  S3_PART_BYTES: int(64 * 1024, 1024 * 1024 * 1024).default(8 * 1024 * 1024),
  S3_READ_CONCURRENCY: int(1, 256).default(16),
  S3_FORCE_PATH_STYLE: bool.optional(),
  AWS_ACCESS_KEY_ID: z.string().optional(),
  AWS_SECRET_ACCESS_KEY: z.string().optional(),
  DECISUM_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be letters, digits, . _ - (at most 64)')
    .default('decisum'),
  EXECUTOR_CONCURRENCY: int(1, 256).default(2),
  EXECUTOR_THREADS: int(1, 64).default(2),
  MAX_ATTEMPTS: int(1, 100).default(5),
  LEASE_MS: int(1000).default(15_000),
  HEARTBEAT_MS: int(100).default(1000),
  JOB_TTL_SECONDS: int(60).default(7 * 24 * 3600),
  SWEEP_INTERVAL_MS: int(100).default(5000),
  PUBLISH_GRACE_MS: int(0).default(10_000),
  READ_RETRIES: int(0, 1000).default(DEFAULT_READ_POLICY.retries),
  READ_IDLE_TIMEOUT_MS: int(100).default(DEFAULT_READ_POLICY.idleTimeoutMs),
  READ_BACKOFF_MS: int(1).default(DEFAULT_READ_POLICY.backoffMs),
  SHUTDOWN_GRACE_MS: int(0).default(20_000),
  RETRY_BACKOFF_MS: int(0).default(1000),
  EXECUTOR_METRICS_PORT: int(0, 65535).default(9464),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface Config {
  port: number;
  redisUrl: string;
  /** RabbitMQ nodes, tried in turn. */
  amqpUrls: string[];
  /** Absolute. */
  dataDir: string;
  s3: {
    endpoint?: string;
    /** S3_REGION, else AWS_REGION; absent: the SDK's chain, then us-east-1 (redirects are followed). */
    region?: string;
    forcePathStyle: boolean;
    credentials?: { accessKeyId: string; secretAccessKey: string };
  };
  /** How a job reads an S3 object: ranged GETs of partBytes, concurrency of them at once. */
  s3Reads: { partBytes: number; concurrency: number };
  prefix: string;
  executor: {
    concurrency: number;
    threads: number;
    /** 0 turns the executor's /metrics server off. */
    metricsPort: number;
    retryBackoffMs: number;
  };
  jobs: {
    maxAttempts: number;
    leaseMs: number;
    heartbeatMs: number;
    ttlSeconds: number;
    sweepIntervalMs: number;
    publishGraceMs: number;
  };
  reads: { retries: number; idleTimeoutMs: number; backoffMs: number };
  shutdownGraceMs: number;
  logLevel: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses the environment once; every bad variable is named in one message. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const input = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')} ${i.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  if ((e.AWS_ACCESS_KEY_ID === undefined) !== (e.AWS_SECRET_ACCESS_KEY === undefined)) {
    throw new ConfigError('invalid configuration: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together');
  }
  return {
    port: e.PORT,
    redisUrl: e.REDIS_URL,
    amqpUrls: e.AMQP_URL,
    dataDir: path.resolve(e.DATA_DIR),
    s3: {
      endpoint: e.S3_ENDPOINT,
      region: e.S3_REGION ?? e.AWS_REGION,
      forcePathStyle: e.S3_FORCE_PATH_STYLE ?? e.S3_ENDPOINT !== undefined,
      credentials:
        e.AWS_ACCESS_KEY_ID !== undefined && e.AWS_SECRET_ACCESS_KEY !== undefined
          ? { accessKeyId: e.AWS_ACCESS_KEY_ID, secretAccessKey: e.AWS_SECRET_ACCESS_KEY }
          : undefined,
    },
    s3Reads: { partBytes: e.S3_PART_BYTES, concurrency: e.S3_READ_CONCURRENCY },
    prefix: e.DECISUM_PREFIX,
    executor: {
      concurrency: e.EXECUTOR_CONCURRENCY,
      threads: e.EXECUTOR_THREADS,
      metricsPort: e.EXECUTOR_METRICS_PORT,
      retryBackoffMs: e.RETRY_BACKOFF_MS,
    },
    jobs: {
      maxAttempts: e.MAX_ATTEMPTS,
      leaseMs: e.LEASE_MS,
      heartbeatMs: e.HEARTBEAT_MS,
      ttlSeconds: e.JOB_TTL_SECONDS,
      sweepIntervalMs: e.SWEEP_INTERVAL_MS,
      publishGraceMs: e.PUBLISH_GRACE_MS,
    },
    reads: { retries: e.READ_RETRIES, idleTimeoutMs: e.READ_IDLE_TIMEOUT_MS, backoffMs: e.READ_BACKOFF_MS },
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    logLevel: e.LOG_LEVEL,
  };
}
