import fs from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { parseTokens, type TokenEntry } from './tokens';
import { parseLocation } from './location';
import { NO_CALLBACK_HOSTS, parseCallbackHosts, type CallbackHosts } from './callbacks';
import { DEFAULT_MAX_COLUMNS, DEFAULT_MAX_HEADER_BYTES, type ReadLimits } from './limits';
import { DEFAULT_READ_POLICY } from './storage/backoff';
import { NO_BUCKETS, parseBucketScope, type BucketScope } from './scope';

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
/**
 * Messages an executor holds per job it sums at once, unless EXECUTOR_PREFETCH says otherwise: a
 * small job's claim, Redis writes and ack then overlap other jobs' sums (Celery's default multiplier
 * is 4 too). Jobs of large files each hold their executor for seconds: set EXECUTOR_PREFETCH to
 * EXECUTOR_CONCURRENCY there, so a backlog spreads over every executor.
 */
const PREFETCH_PER_SLOT = 4;

/** One URL, or several separated by commas (the nodes of a cluster). */
const urls = (protocols: string[]) =>
  z
    .string()
    .transform((v) => v.split(',').map((u) => u.trim()))
    .refine((list) => list.every((u) => isUrl(u, protocols)), `must be ${protocols.join(' or ')}// URLs separated by commas`);

/** `host:port` (IPv6 as `[addr]:port`; the port defaults to Sentinel's 26379), comma-separated. */
const hostPorts = z.string().transform((value, ctx) => {
  const list: HostPort[] = [];
  for (const item of value.split(',').map((v) => v.trim()).filter((v) => v !== '')) {
    const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(item);
    const port = Number(m?.[3] ?? 26379);
    if (!m || port < 1 || port > 65535) {
      ctx.addIssue({ code: 'custom', message: `"${item}" is not host:port` });
      return z.NEVER;
    }
    list.push({ host: m[1] ?? m[2], port });
  }
  if (list.length === 0) {
    ctx.addIssue({ code: 'custom', message: 'must list at least one host:port' });
    return z.NEVER;
  }
  return list;
});

/** TRUST_PROXY: a hop count, or proxy addresses / CIDR ranges separated by commas; off (false) when unset or 0. */
const trustProxy = z.string().transform((value, ctx): TrustProxy => {
  if (/^\d+$/.test(value)) { return Number(value) === 0 ? false : Number(value); }
  if (value === 'false') { return false; }
  const list = value.split(',').map((v) => v.trim()).filter((v) => v !== '');
  const bad = list.find((v) => isIP(v.split('/')[0]) === 0);
  if (list.length === 0 || bad !== undefined) {
    ctx.addIssue({ code: 'custom', message: `must be a hop count or proxy addresses (or CIDR ranges) separated by commas${bad ? `; "${bad}" is not an address` : ''}` });
    return z.NEVER;
  }
  return list;
});

/** The resource limits when their variables are unset (see Config['limits']). */
export const DEFAULT_LIMITS: Limits = {
  uploadBytes: 1024 ** 3,
  minFreeBytes: 1024 ** 3,
  // Off: the quick start, the examples and the service benchmark (thousands of submissions a minute) run unthrottled.
  ratePerMinute: 0,
  activeJobsPerOwner: 10_000,
  listColumns: 100,
  listingPage: 1000,
};


const schema = z.object({
  PORT: int(0, 65535).default(8080),
  HOST: z.string().min(1).default('127.0.0.1'),
  METRICS_PORT: int(0, 65535).default(9463),
  TRUST_PROXY: trustProxy.optional(),
  API_TOKENS: z.string().optional(),
  API_TOKENS_FILE: z.string().optional(),
  REDIS_URL: url(['redis:', 'rediss:']).default('redis://127.0.0.1:6379'),
  AMQP_URL: urls(['amqp:', 'amqps:']).default(['amqp://guest:guest@127.0.0.1:5672']),
  REDIS_SENTINELS: hostPorts.optional(),
  REDIS_SENTINEL_NAME: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must be letters, digits, . _ -').optional(),
  REDIS_WAIT_REPLICAS: int(0, 16).optional(),
  REDIS_WAIT_TIMEOUT_MS: int(1, 60_000).default(2000),
  RESULTS_LOCATION: z.string().min(1).optional(),
  DATA_DIR: z.string().min(1).default('./data'),
  S3_ENDPOINT: url(['http:', 'https:']).optional(),
  S3_REGION: z.string().min(1).optional(),
  AWS_REGION: z.string().min(1).optional(),
  S3_PART_BYTES: int(64 * 1024, 1024 * 1024 * 1024).default(8 * 1024 * 1024),
  S3_READ_CONCURRENCY: int(1, 256).default(16),
  S3_FORCE_PATH_STYLE: bool.optional(),
  S3_BUCKETS: z
    .string()
    .transform((v, ctx) => {
      try {
        return parseBucketScope(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    })
    .optional(),
  MAX_UPLOAD_BYTES: int(1).default(DEFAULT_LIMITS.uploadBytes),
  MIN_FREE_BYTES: int(0).default(DEFAULT_LIMITS.minFreeBytes),
  RATE_LIMIT_PER_MINUTE: int(0).default(DEFAULT_LIMITS.ratePerMinute),
  MAX_ACTIVE_JOBS_PER_OWNER: int(0).default(DEFAULT_LIMITS.activeJobsPerOwner),
  LIST_MAX_COLUMNS: int(0, 100_000).default(DEFAULT_LIMITS.listColumns),
  LISTING_PAGE_SIZE: int(1, 100_000).default(DEFAULT_LIMITS.listingPage),
  AWS_ACCESS_KEY_ID: z.string().optional(),
  AWS_SECRET_ACCESS_KEY: z.string().optional(),
  DECISUM_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be letters, digits, . _ - (at most 64)')
    .default('decisum'),
  EXECUTOR_CONCURRENCY: int(1, 256).default(2),
  EXECUTOR_PREFETCH: int(1, 1024).optional(),
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
  MAX_COLUMNS: int(1, 100_000_000).default(DEFAULT_MAX_COLUMNS),
  MAX_HEADER_BYTES: int(1024, 64 * 1024 * 1024).default(DEFAULT_MAX_HEADER_BYTES),
  CALLBACK_HOSTS: z
    .string()
    .transform((v, ctx) => {
      try {
        return parseCallbackHosts(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    })
    .optional(),
  CALLBACK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  CALLBACK_BACKOFF_MS: int(1).default(1000),
  CALLBACK_RETRY_FOR_SECONDS: int(0).default(24 * 3600),
  CALLBACK_TIMEOUT_MS: int(100, 600_000).default(10_000),
  EVENT_HISTORY: int(100, 10_000_000).default(10_000),
  SSE_HEARTBEAT_MS: int(100).default(15_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** Limits on what one client may hold or send (issue 10). */
export interface Limits {
  /** MAX_UPLOAD_BYTES: the largest file PUT accepts. */
  uploadBytes: number;
  /** MIN_FREE_BYTES: uploads under DATA_DIR are refused while less than this is free; 0 turns the check off. */
  minFreeBytes: number;
  /** RATE_LIMIT_PER_MINUTE: requests per owner and client address per minute; 0 turns the limit off. */
  ratePerMinute: number;
  /** MAX_ACTIVE_JOBS_PER_OWNER: queued plus running jobs one owner may have; 0 turns the limit off. */
  activeJobsPerOwner: number;
  /** LIST_MAX_COLUMNS: per-column results a job carries in the list endpoint's answer. */
  listColumns: number;
  /** LISTING_PAGE_SIZE: the most files one listing page holds. */
  listingPage: number;
}

export interface HostPort {
  host: string;
  port: number;
}

/** Where finished jobs are archived: a local folder (absolute) or an S3 bucket and key prefix (`''` or ending in `/`). */
export type ResultsLocation = { kind: 'local'; dir: string } | { kind: 's3'; bucket: string; prefix: string };

/** Which proxies' X-Forwarded-For to believe: none, the nearest N hops, or these addresses. */
export type TrustProxy = false | number | string[];

export interface Config {
  port: number;
  /** The API's listening address; loopback unless tokens are configured. */
  host: string;
  /** The API's /metrics port (its own, not the public one); 0 turns it off. */
  metricsPort: number;
  trustProxy: TrustProxy;
  /** API_TOKENS or API_TOKENS_FILE; empty: protected mode (loopback only, every caller is the local owner). */
  tokens: TokenEntry[];
  /** In Sentinel mode its host and port are not used; its password, database and TLS are. */
  redisUrl: string;
  /** Sentinel mode: every Redis client asks these sentinels for the master of `name` and follows it through failover. */
  redisSentinel?: { name: string; sentinels: HostPort[] };
  /**
   * Replicas that must confirm a job state change (Redis WAIT) before it is acted on; 0 for a lone Redis.
   * A change that is not confirmed within timeoutMs is reported as STORE_UNAVAILABLE.
   */
  redisWait: { replicas: number; timeoutMs: number };
  /** The results archive (RESULTS_LOCATION). */
  results: ResultsLocation;
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
  /** S3_BUCKETS: the S3 locations jobs and the files API may touch; no bucket when unset. */
  buckets: BucketScope;
  limits: Limits;
  /** How a job reads an S3 object: ranged GETs of partBytes, concurrency of them at once. */
  s3Reads: { partBytes: number; concurrency: number };
  prefix: string;
  executor: {
    /** Jobs one executor claims and sums at once. */
    concurrency: number;
    /** Messages it holds at once (≥ concurrency); those beyond concurrency wait unclaimed for a slot. */
    prefetch: number;
    threads: number;
    /** 0 turns the executor's /metrics server off. */
    metricsPort: number;
    retryBackoffMs: number;
    /** Bounds of one job's read (MAX_COLUMNS, MAX_HEADER_BYTES): a file past them fails its job at its header. */
    limits: ReadLimits;
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
  callbacks: {
    /** Nothing is allowed when CALLBACK_HOSTS is unset. */
    hosts: CallbackHosts;
    /** Signs every delivery; set whenever hosts are. */
    secret?: string;
    /** The first delay before a failed delivery is tried again; it doubles per attempt. */
    backoffMs: number;
    /** Deliveries are retried for this long after the job finished, then given up. */
    retryForMs: number;
    /** One attempt's limit: connect, send, and the receiver's answer. */
    timeoutMs: number;
  };
  events: {
    /** State changes kept in the events stream, for clients that resume with Last-Event-ID. */
    history: number;
    /** How often an idle event stream gets a comment, so proxies keep it open. */
    heartbeatMs: number;
  };
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
  if ((e.REDIS_SENTINELS === undefined) !== (e.REDIS_SENTINEL_NAME === undefined)) {
    throw new ConfigError('invalid configuration: REDIS_SENTINELS and REDIS_SENTINEL_NAME must be set together');
  }
  if (e.EXECUTOR_PREFETCH !== undefined && e.EXECUTOR_PREFETCH < e.EXECUTOR_CONCURRENCY) {
    throw new ConfigError(
      `invalid configuration: EXECUTOR_PREFETCH (${e.EXECUTOR_PREFETCH}) must be at least EXECUTOR_CONCURRENCY (${e.EXECUTOR_CONCURRENCY})`,
    );
  }
  const dataDir = path.resolve(e.DATA_DIR);
  if (e.CALLBACK_HOSTS !== undefined && e.CALLBACK_SECRET === undefined) {
    throw new ConfigError('invalid configuration: CALLBACK_SECRET must be set when CALLBACK_HOSTS is (every callback is signed with it)');
  }
  return {
    port: e.PORT,
    host: e.HOST,
    metricsPort: e.METRICS_PORT,
    trustProxy: e.TRUST_PROXY ?? false,
    tokens: loadTokens(e.API_TOKENS, e.API_TOKENS_FILE),
    redisUrl: e.REDIS_URL,
    redisSentinel:
      e.REDIS_SENTINELS !== undefined && e.REDIS_SENTINEL_NAME !== undefined
        ? { name: e.REDIS_SENTINEL_NAME, sentinels: e.REDIS_SENTINELS }
        : undefined,
    // With Sentinel a change only the master holds can vanish in a failover: wait for the replica by default.
    redisWait: { replicas: e.REDIS_WAIT_REPLICAS ?? (e.REDIS_SENTINELS ? 1 : 0), timeoutMs: e.REDIS_WAIT_TIMEOUT_MS },
    results: resultsLocation(e.RESULTS_LOCATION, dataDir),
    amqpUrls: e.AMQP_URL,
    dataDir,
    s3: {
      endpoint: e.S3_ENDPOINT,
      region: e.S3_REGION ?? e.AWS_REGION,
      forcePathStyle: e.S3_FORCE_PATH_STYLE ?? e.S3_ENDPOINT !== undefined,
      credentials:
        e.AWS_ACCESS_KEY_ID !== undefined && e.AWS_SECRET_ACCESS_KEY !== undefined
          ? { accessKeyId: e.AWS_ACCESS_KEY_ID, secretAccessKey: e.AWS_SECRET_ACCESS_KEY }
          : undefined,
    },
    buckets: e.S3_BUCKETS ?? NO_BUCKETS,
    limits: {
      uploadBytes: e.MAX_UPLOAD_BYTES,
      minFreeBytes: e.MIN_FREE_BYTES,
      ratePerMinute: e.RATE_LIMIT_PER_MINUTE,
      activeJobsPerOwner: e.MAX_ACTIVE_JOBS_PER_OWNER,
      listColumns: e.LIST_MAX_COLUMNS,
      listingPage: e.LISTING_PAGE_SIZE,
    },
    s3Reads: { partBytes: e.S3_PART_BYTES, concurrency: e.S3_READ_CONCURRENCY },
    prefix: e.DECISUM_PREFIX,
    executor: {
      concurrency: e.EXECUTOR_CONCURRENCY,
      prefetch: e.EXECUTOR_PREFETCH ?? PREFETCH_PER_SLOT * e.EXECUTOR_CONCURRENCY,
      threads: e.EXECUTOR_THREADS,
      metricsPort: e.EXECUTOR_METRICS_PORT,
      retryBackoffMs: e.RETRY_BACKOFF_MS,
      limits: { maxColumns: e.MAX_COLUMNS, maxHeaderBytes: e.MAX_HEADER_BYTES },
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
    callbacks: {
      hosts: e.CALLBACK_HOSTS ?? NO_CALLBACK_HOSTS,
      secret: e.CALLBACK_SECRET,
      backoffMs: e.CALLBACK_BACKOFF_MS,
      retryForMs: e.CALLBACK_RETRY_FOR_SECONDS * 1000,
      timeoutMs: e.CALLBACK_TIMEOUT_MS,
    },
    events: { history: e.EVENT_HISTORY, heartbeatMs: e.SSE_HEARTBEAT_MS },
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    logLevel: e.LOG_LEVEL,
  };
}

/** The tokens of API_TOKENS, or of the file API_TOKENS_FILE names; none when neither is set. */
function loadTokens(inline: string | undefined, file: string | undefined): TokenEntry[] {
  if (inline !== undefined && file !== undefined) { throw new ConfigError('invalid configuration: set API_TOKENS or API_TOKENS_FILE, not both'); }
  if (file === undefined && inline === undefined) { return []; }
  const name = file === undefined ? 'API_TOKENS' : 'API_TOKENS_FILE';
  let json = inline ?? '';
  if (file !== undefined) {
    try {
      json = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`invalid configuration: API_TOKENS_FILE ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  try {
    return parseTokens(json);
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${name} ${(err as Error).message}`);
  }
}

/** Loopback names and addresses: the only places protected mode (no tokens) may listen. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/** Why the API must not start with this configuration (listening beyond loopback without tokens), or undefined. */
export function exposureProblem(config: Pick<Config, 'host' | 'tokens'>): string | undefined {
  if (config.tokens.length > 0 || isLoopbackHost(config.host)) { return undefined; }
  return `HOST=${config.host} listens beyond this machine, but no API_TOKENS or API_TOKENS_FILE is set: configure tokens (npx decisum token create) or bind to 127.0.0.1`;
}

/** RESULTS_LOCATION: s3://bucket/prefix/, or a folder (relative to DATA_DIR); `.decisum/results` under DATA_DIR by default. */
function resultsLocation(value: string | undefined, dataDir: string): ResultsLocation {
  if (value === undefined) { return { kind: 'local', dir: path.join(dataDir, '.decisum', 'results') }; }
  if (!value.startsWith('s3://')) { return { kind: 'local', dir: path.resolve(dataDir, value) }; }
  let loc;
  try {
    loc = parseLocation(value);
  } catch (err) {
    if ((err as { code?: string }).code === 'INVALID_LOCATION') {
      throw new ConfigError('invalid configuration: RESULTS_LOCATION must not have . or .. segments (nor empty ones)');
    }
    throw new ConfigError(`invalid configuration: RESULTS_LOCATION ${(err as Error).message}`);
  }
  if (loc.kind !== 's3') { throw new ConfigError('invalid configuration: RESULTS_LOCATION must be s3://bucket/prefix/ or a folder'); }
  const segments = loc.key.split('/').filter((p) => p !== '');
  if (segments.some((p) => p === '.' || p === '..')) {
    throw new ConfigError('invalid configuration: RESULTS_LOCATION must not have . or .. segments');
  }
  return { kind: 's3', bucket: loc.bucket, prefix: segments.length ? `${segments.join('/')}/` : '' };
}
