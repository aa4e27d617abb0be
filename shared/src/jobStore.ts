import { createHash, randomUUID } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import type { Config } from './config';
import { AppError, type ErrorBody } from './errors';
import { ensureEpochLua, epochKey } from './epoch';
import {
  JobMessageSchema,
  JobSchema,
  ProgressSchema,
  type ActiveCount,
  type Job,
  type JobMessage,
  type JobPage,
  type JobResult,
  type Progress,
} from './job';
import { FINAL_STATUSES, type JobStatus } from './status';
import { LOCAL_OWNER } from './tokens';

/**
 * Redis is the record of every job. Keys under `{prefix}:`:
 *   job:{id}   hash: the job's fields, JSON where structured
 *   jobs       zset seq → id, for listing newest first
 *   queued     zset id → created ms: jobs waiting for an executor
 *   running    zset id → lease expiry ms: only live leases count as running
 *   outbox     zset id → created ms: recorded but not yet confirmed by the broker
 *   idem:{owner}:{key} id of the job an owner's Idempotency-Key created (keys are per owner)
 *   fence      a counter bumped after each state change when replicas must confirm it (see run)
 *   events     stream, capped: the job's hash after every state change (or `gone` when a record is taken back)
 *   progress   stream, short: `{id, owner, progress}` each time a running job's progress changes
 *   callbacks  zset id → due ms: final jobs whose callback is still to be delivered (or a delivery's lease)
 *   epoch      the Redis epoch (see epoch.ts); each job's hash keeps the one it was recorded under
 *   active:{owner}  zset id → admitted ms: an owner's places under MAX_ACTIVE_JOBS_PER_OWNER (see ADMIT_LUA)
 * Every state change is one Lua script, so a stale executor (older attempt) can never overwrite a newer one;
 * the script also appends the change to the events stream, so an event is never lost nor ahead of its change.
 */

/** Lua: whether the local `status` is final; built from FINAL_STATUSES so the scripts and isFinal agree. */
const LUA_FINAL = FINAL_STATUSES.map((s) => `status == '${s}'`).join(' or ');

/** Lua: appends the job's hash (KEYS[1]) to the events stream KEYS[stream], capped near ARGV[cap]. */
const emit = (stream: number, cap: number) =>
  `redis.call('XADD', KEYS[${stream}], 'MAXLEN', '~', ARGV[${cap}], '*', unpack(redis.call('HGETALL', KEYS[1])))`;

/** Lua: a final job with a callback is due for delivery now (ARGV[now], ms), in the same script that made it final; `due` says so. */
const dueCallback = (callbacks: number, now: number) =>
  `local due = redis.call('HEXISTS', KEYS[1], 'callbackUrl') == 1
      if due then redis.call('ZADD', KEYS[${callbacks}], ARGV[${now}], ARGV[1]) end`;

/**
 * Lua: reserves a place for job `id` in an owner's active set (zset id → admitted ms) under `limit`:
 * returns the count with it, or -count when full (nothing changed). Counted from the set alone until
 * it is full; only then are the jobs that ended (or whose record is gone) swept out of it, so a
 * submission costs O(1) until an owner nears the limit. The place is taken in the script that records
 * the job, so a place never waits for its record.
 */
const ADMIT_LUA = `
  local function admit(active, id, now, limit, jobPrefix, ttl)
    local n = redis.call('ZCARD', active)
    if n >= limit then
      local members = redis.call('ZRANGE', active, 0, -1, 'WITHSCORES')
      for i = 1, #members, 2 do
        local status = redis.call('HGET', jobPrefix .. members[i], 'status')
        if (not status) or ${LUA_FINAL} then redis.call('ZREM', active, members[i]) end
      end
      n = redis.call('ZCARD', active)
      if n >= limit then return -n end
    end
    redis.call('ZADD', active, now, id)
    redis.call('EXPIRE', active, ttl)
    return n + 1
  end`;

/** Progress events are for watching live, not for resuming: a short stream is enough. */
const PROGRESS_HISTORY = 1000;

const SCRIPTS = {
  create: {
    keys: 9, // job, jobs, queued, outbox, seq, idem, events, epoch, the owner's active set
    lua: `
      ${ADMIT_LUA}
      if ARGV[7] == '1' then
        local existing = redis.call('GET', KEYS[6])
        if existing then
          local record = redis.call('HGETALL', (KEYS[1]:gsub('[^:]+$', existing)))
          if #record > 0 then return {0, existing, record} end
        end
      end
      if ARGV[13] ~= '0' then
        local n = admit(KEYS[9], ARGV[1], tonumber(ARGV[5]), tonumber(ARGV[13]), (KEYS[1]:gsub('[^:]+$', '')), ARGV[6])
        if n < 0 then return {2, ARGV[1], -n} end
      end
      ${ensureEpochLua(8, 10)}
      local seq = redis.call('INCR', KEYS[5])
      redis.call('HSET', KEYS[1], 'id', ARGV[1], 'owner', ARGV[12], 'file', ARGV[2], 'options', ARGV[3], 'status', 'queued',
        'createdAt', ARGV[4], 'attempts', 0, 'seq', seq, 'epoch', epoch)
      if ARGV[8] ~= '' then
        redis.call('HSET', KEYS[1], 'callbackUrl', ARGV[8], 'callbackStatus', 'pending', 'callbackAttempts', 0)
      end
      redis.call('ZADD', KEYS[2], seq, ARGV[1])
      redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
      redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
      if ARGV[7] == '1' then
        redis.call('SET', KEYS[6], ARGV[1], 'EX', ARGV[6])
        redis.call('HSET', KEYS[1], 'idempotencyKey', ARGV[11])
      end
      ${emit(7, 9)}
      return {1, ARGV[1], redis.call('HGETALL', KEYS[1])}`,
  },
  restore: {
    keys: 8, // job, jobs, queued, running, seq, idem, events, epoch
    lua: `
      if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
      if redis.call('GET', KEYS[8]) == ARGV[10] then return 'same-epoch' end
      ${ensureEpochLua(8, 11)}
      local seq = redis.call('INCR', KEYS[5])
      redis.call('HSET', KEYS[1], 'id', ARGV[1], 'file', ARGV[2], 'options', ARGV[3], 'createdAt', ARGV[4],
        'attempts', ARGV[13], 'seq', seq, 'epoch', epoch, 'restoredAt', ARGV[15])
      if ARGV[12] ~= '' then redis.call('HSET', KEYS[1], 'owner', ARGV[12]) end
      if ARGV[8] ~= '' then
        redis.call('HSET', KEYS[1], 'callbackUrl', ARGV[8], 'callbackStatus', 'pending', 'callbackAttempts', 0)
      end
      if ARGV[7] ~= '' then
        redis.call('HSET', KEYS[1], 'idempotencyKey', ARGV[7])
        redis.call('SET', KEYS[6], ARGV[1], 'EX', ARGV[6], 'NX')
      end
      redis.call('ZADD', KEYS[2], seq, ARGV[1])
      if ARGV[13] == '0' then
        redis.call('HSET', KEYS[1], 'status', 'queued')
        redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
      else
        redis.call('HSET', KEYS[1], 'status', 'running', 'startedAt', ARGV[15])
        redis.call('ZADD', KEYS[4], ARGV[14], ARGV[1])
      end
      ${emit(7, 9)}
      return 'restored'`,
  },
  discard: {
    keys: 7, // job, jobs, queued, outbox, idem, events, the owner's active set
    lua: `
      if redis.call('HGET', KEYS[1], 'status') ~= 'queued' or redis.call('HGET', KEYS[1], 'attempts') ~= '0' then
        return 0
      end
      local owner = redis.call('HGET', KEYS[1], 'owner') or ''
      redis.call('DEL', KEYS[1])
      redis.call('ZREM', KEYS[2], ARGV[1])
      redis.call('ZREM', KEYS[3], ARGV[1])
      redis.call('ZREM', KEYS[4], ARGV[1])
      redis.call('ZREM', KEYS[7], ARGV[1])
      if redis.call('GET', KEYS[5]) == ARGV[1] then redis.call('DEL', KEYS[5]) end
      redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[2], '*', 'id', ARGV[1], 'gone', '1', 'owner', owner)
      return 1`,
  },
  claim: {
    keys: 4, // job, queued, running, events
    lua: `
      local status = redis.call('HGET', KEYS[1], 'status')
      if not status then return {'missing', 0} end
      if ${LUA_FINAL} then return {status, 0} end
      if status == 'running' then
        local lease = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[1]) or '0')
        if lease > tonumber(ARGV[4]) then return {'busy', lease} end
      end
      local attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
      redis.call('HSET', KEYS[1], 'status', 'running', 'startedAt', ARGV[3])
      redis.call('ZREM', KEYS[2], ARGV[1])
      redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
      ${emit(4, 5)}
      return {'claimed', attempt}`,
  },
  heartbeat: {
    keys: 3, // job, running, progress
    lua: `
      local status = redis.call('HGET', KEYS[1], 'status')
      if status ~= 'running' or redis.call('HGET', KEYS[1], 'attempts') ~= ARGV[2] then return status or 'missing' end
      redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
      if ARGV[4] ~= '' and redis.call('HGET', KEYS[1], 'progress') ~= ARGV[4] then
        redis.call('HSET', KEYS[1], 'progress', ARGV[4])
        redis.call('XADD', KEYS[3], 'MAXLEN', '~', ${PROGRESS_HISTORY}, '*',
          'id', ARGV[1], 'owner', redis.call('HGET', KEYS[1], 'owner') or '', 'progress', ARGV[4])
      end
      return 'ok'`,
  },
  finish: {
    keys: 5, // job, running, queued, events, callbacks
    lua: `
      if redis.call('HGET', KEYS[1], 'status') ~= 'running' or redis.call('HGET', KEYS[1], 'attempts') ~= ARGV[2] then
        return 0
      end
      redis.call('HSET', KEYS[1], 'status', ARGV[3], ARGV[4], ARGV[5], 'finishedAt', ARGV[6])
      if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'progress', ARGV[8]) end
      redis.call('ZREM', KEYS[2], ARGV[1])
      redis.call('ZREM', KEYS[3], ARGV[1])
      redis.call('EXPIRE', KEYS[1], ARGV[7])
      ${dueCallback(5, 9)}
      ${emit(4, 10)}
      if due then return 2 end
      return 1`,
  },
  release: {
    keys: 4, // job, running, queued, events
    lua: `
      if redis.call('HGET', KEYS[1], 'status') ~= 'running' or redis.call('HGET', KEYS[1], 'attempts') ~= ARGV[2] then
        return 0
      end
      redis.call('HSET', KEYS[1], 'status', 'queued')
      if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'lastError', ARGV[4]) end
      redis.call('ZREM', KEYS[2], ARGV[1])
      redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
      ${emit(4, 5)}
      return 1`,
  },
  end: {
    keys: 6, // job, running, queued, outbox, events, callbacks
    lua: `
      local status = redis.call('HGET', KEYS[1], 'status')
      if not status then return 'missing' end
      if ${LUA_FINAL} then return status end
      local err = ARGV[3]
      if ARGV[2] == 'failed' then err = redis.call('HGET', KEYS[1], 'lastError') or err end
      redis.call('HSET', KEYS[1], 'status', ARGV[2], 'finishedAt', ARGV[4])
      if err ~= '' then redis.call('HSET', KEYS[1], 'error', err) end
      redis.call('ZREM', KEYS[2], ARGV[1])
      redis.call('ZREM', KEYS[3], ARGV[1])
      redis.call('ZREM', KEYS[4], ARGV[1])
      redis.call('EXPIRE', KEYS[1], ARGV[5])
      ${dueCallback(6, 6)}
      ${emit(5, 7)}
      return 'ended'`,
  },
  claimCallbacks: {
    keys: 1, // callbacks; the jobs' keys are ARGV[4] .. id
    lua: `
      local claimed = {}
      for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])) do
        if redis.call('HGET', ARGV[4] .. id, 'callbackStatus') == 'pending' then
          redis.call('ZADD', KEYS[1], ARGV[2], id)
          table.insert(claimed, id)
        else
          redis.call('ZREM', KEYS[1], id)
        end
      end
      return claimed`,
  },
  callbackAttempted: {
    keys: 2, // job, callbacks
    lua: `
      if redis.call('EXISTS', KEYS[1]) == 0 then
        redis.call('ZREM', KEYS[2], ARGV[1])
        return 0
      end
      local attempts = redis.call('HINCRBY', KEYS[1], 'callbackAttempts', 1)
      if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'callbackError', ARGV[4]) end
      if ARGV[2] == 'retry' then
        redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
      else
        redis.call('ZREM', KEYS[2], ARGV[1])
        redis.call('HSET', KEYS[1], 'callbackStatus', ARGV[2])
      end
      return attempts`,
  },
} as const;

type ScriptName = keyof typeof SCRIPTS;

const shas = new Map<string, string>();

/** The SHA-1 Redis knows a script by. */
/** The server does not hold the script (a new server, or a failover): it ran nothing. */
function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

function shaOf(lua: string): string {
  let sha = shas.get(lua);
  if (sha === undefined) {
    sha = createHash('sha1').update(lua).digest('hex');
    shas.set(lua, sha);
  }
  return sha;
}

export type ClaimOutcome =
  | { kind: 'claimed'; attempt: number }
  | { kind: 'busy'; leaseUntil: number }
  | { kind: 'finished'; status: JobStatus }
  | { kind: 'missing' };

/** How long a client turned away for too many active jobs is asked to wait before trying again. */
const ACTIVE_RETRY_AFTER_SECONDS = 10;

function tooManyActiveJobs(owner: string, limit: number): AppError {
  return new AppError(
    'TOO_MANY_ACTIVE_JOBS',
    `${owner} already has ${limit} jobs queued or running, the most allowed (MAX_ACTIVE_JOBS_PER_OWNER); try again when some finish`,
    { status: 429, retryAfter: ACTIVE_RETRY_AFTER_SECONDS },
  );
}

/** A queue message that carries enough to record its job again, and the epoch it was made under. */
export type DurableCopy = JobMessage & { createdAt: string; epoch: string };

/** Whether a message carries a durable copy (messages published before decisum made them do not). */
export function isDurableCopy(message: JobMessage): message is DurableCopy {
  return message.createdAt !== undefined && message.epoch !== undefined;
}

/** What a restore did: recorded the job again, found a record already, or found the same epoch (the job expired or was removed). */
export type RestoreOutcome = 'restored' | 'exists' | 'same-epoch';

export interface NewJob {
  /** The submitting token's name; the local owner when absent. */
  owner?: string;
  /** A new one when absent. */
  id?: string;
  file: string;
  options: Job['options'];
  /** The webhook to call once the job is final. */
  callbackUrl?: string;
  /**
   * MAX_ACTIVE_JOBS_PER_OWNER; 0 or absent: no limit. The job takes a place among its owner's active
   * (queued or running) jobs in the script that records it, atomically across API processes; a place
   * is freed once its job is final or its record gone.
   */
  activeLimit?: number;
}

/** What a lease renewal writes: the lease is extended, the progress recorded. */
export interface Renewal {
  id: string;
  attempt: number;
  progress?: Progress;
}

/** 'ok' while the attempt still owns the job; otherwise the status that took it away. */
export type RenewalState = 'ok' | JobStatus | 'missing';

export interface JobStoreOptions {
  prefix: string;
  ttlSeconds: number;
  leaseMs: number;
  /** Replicas that must hold every state change (and every state a script saw) before it returns; none when absent. */
  wait?: { replicas: number; timeoutMs: number };
  /** State changes kept in the events stream (about; Redis trims whole blocks). */
  eventHistory?: number;
  now?: () => number;
}

export function jobStoreOptions(config: Pick<Config, 'prefix' | 'jobs' | 'redisWait' | 'events'>): JobStoreOptions {
  return {
    prefix: config.prefix,
    ttlSeconds: config.jobs.ttlSeconds,
    leaseMs: config.jobs.leaseMs,
    wait: config.redisWait,
    eventHistory: config.events.history,
  };
}

/** A change seen in the streams. `id` is the stream entry's id; `owner` is the job's, for who may see it. */
export type JobEvent =
  | { type: 'job'; id: string; jobId: string; owner?: string; job: Job }
  /** A record taken back before anyone could have been told it was accepted (the broker refused it). */
  | { type: 'gone'; id: string; jobId: string; owner?: string }
  | { type: 'progress'; id: string; jobId: string; owner?: string; progress: Progress };

export type StreamName = 'events' | 'progress';

/** The Redis keys of the two streams under a prefix. */
export function streamKeys(prefix: string): Record<StreamName, string> {
  return { events: `${prefix}:events`, progress: `${prefix}:progress` };
}

/** Stream ids are `ms-seq`: compared as numbers, part by part. */
export function compareEventIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am - bm || (as ?? 0) - (bs ?? 0);
}

export const EVENT_ID = /^\d{1,20}-\d{1,20}$/;

/** One stream entry back as an event; undefined (and nothing thrown) for an entry that does not decode. */
export function decodeEvent(stream: StreamName, id: string, fields: string[]): JobEvent | undefined {
  const h = fieldsOf(fields);
  const owner = h.owner || undefined;
  if (!h.id) { return undefined; }
  if (stream === 'progress') {
    const progress = ProgressSchema.safeParse(parseJsonSafe(h.progress));
    return progress.success ? { type: 'progress', id, jobId: h.id, owner, progress: progress.data } : undefined;
  }
  if (h.gone) { return { type: 'gone', id, jobId: h.id, owner }; }
  try {
    const job = toJob(h);
    return job && { type: 'job', id, jobId: job.id, owner, job };
  } catch {
    return undefined;
  }
}

/** A flat [field, value, …] reply (HGETALL in a script, a stream entry) as a hash. */
function fieldsOf(fields: string[]): Record<string, string> {
  const h: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) { h[fields[i]] = fields[i + 1]; }
  return h;
}

function parseJsonSafe(raw: string | undefined): unknown {
  try {
    return parseJson(raw);
  } catch {
    return undefined;
  }
}

/** What a callback delivery came to: accepted, to be tried again at a time, or given up. */
export type CallbackAttempt = { outcome: 'delivered'; error?: string } | { outcome: 'retry'; at: number; error: string } | { outcome: 'failed'; error: string };

function parseJson(raw: string | undefined): unknown {
  return raw === undefined || raw === '' ? undefined : JSON.parse(raw);
}

const NO_PROGRESS: Progress = { bytesRead: 0, bytesTotal: 0, rows: 0 };
const DEFAULT_EVENT_HISTORY = 10_000;

export class JobStore {
  private readonly prefix: string;
  private readonly now: () => number;
  private readonly streams: Record<StreamName, string>;
  private readonly history: number;
  private callbackDue?: () => void;

  constructor(
    private readonly redis: Redis,
    private readonly options: JobStoreOptions,
  ) {
    this.prefix = options.prefix;
    this.now = options.now ?? Date.now;
    this.streams = streamKeys(options.prefix);
    this.history = options.eventHistory ?? DEFAULT_EVENT_HISTORY;
  }

  private key(...parts: string[]): string {
    return [this.prefix, ...parts].join(':');
  }

  private jobKey(id: string): string {
    return this.key('job', id);
  }

  /** Idempotency keys are per owner: one owner's key never finds another's job. */
  private idemKey(owner: string, key: string | undefined): string {
    return this.key('idem', owner, key ?? '-');
  }

  private async run(name: ScriptName, keys: string[], args: (string | number)[]): Promise<unknown> {
    const script = SCRIPTS[name];
    if (keys.length !== script.keys) { throw new Error(`script ${name} takes ${script.keys} keys`); }
    const argv = [...keys, ...args.map(String)];
    // By its SHA-1 (40 bytes, not the script's text); a server that does not hold the script yet
    // (a new one, or a failover) answers NOSCRIPT without running anything, and then gets the text.
    const wait = this.options.wait;
    const send = async (byText: boolean): Promise<unknown> => {
      if (wait === undefined || wait.replicas === 0) {
        // Alone, so the client's auto-pipelining sends it in one write with other jobs' commands.
        return byText ? this.redis.eval(script.lua, keys.length, ...argv) : this.redis.evalsha(shaOf(script.lua), keys.length, ...argv);
      }
      const pipeline = this.redis.pipeline();
      if (byText) { pipeline.eval(script.lua, keys.length, ...argv); }
      else { pipeline.evalsha(shaOf(script.lua), keys.length, ...argv); }
      const [[err, reply]] = await this.confirmed(pipeline, name);
      if (err) { throw err; }
      return reply;
    };
    return send(false).catch((err: unknown) => {
      if (!isNoScript(err)) { throw err; }
      return send(true);
    });
  }

  /**
   * Runs a pipeline of state-change scripts and returns their replies. With replicas to wait for, it
   * ends with a write to the fence key and WAIT: the fence comes after the scripts' own writes and
   * after every write they read, so once a replica holds the fence, a failover to that replica cannot
   * undo what the caller is told, even when a script changed nothing (a retry, or a state another
   * process set). An unconfirmed change may still be on the master alone: STORE_UNAVAILABLE, and
   * callers retry as for a lost connection.
   */
  private async confirmed(pipeline: ChainableCommander, what: string): Promise<[Error | null, unknown][]> {
    const scripts = pipeline.length;
    const wait = this.options.wait;
    const waiting = wait !== undefined && wait.replicas > 0;
    if (waiting) { pipeline.incr(this.key('fence')).wait(wait.replicas, wait.timeoutMs); }
    const replies = await pipeline.exec();
    if (!replies) { throw new AppError('STORE_UNAVAILABLE', `job store ${what} was not run`, { status: 503 }); }
    if (!waiting) { return replies; }
    const failed = replies.slice(scripts).find(([err]) => err)?.[0];
    if (failed) { throw failed; }
    const acked = Number(replies[scripts + 1][1]);
    if (acked < wait.replicas) {
      throw new AppError(
        'STORE_UNAVAILABLE',
        `the job store could not confirm the change on ${wait.replicas} replica(s) within ${wait.timeoutMs} ms (${acked} did)`,
        { status: 503 },
      );
    }
    return replies.slice(0, scripts);
  }

  /** Records a job; with an idempotency key that already made a job of this owner, returns that job instead. */
  async create(job: NewJob, idempotencyKey?: string): Promise<{ job: Job; message: JobMessage; created: boolean }> {
    const id = job.id ?? randomUUID();
    const now = this.now();
    const owner = job.owner ?? LOCAL_OWNER;
    const [created, jobId, record] = (await this.run(
      'create',
      [
        this.jobKey(id),
        this.key('jobs'),
        this.key('queued'),
        this.key('outbox'),
        this.key('seq'),
        this.idemKey(owner, idempotencyKey),
        this.streams.events,
        epochKey(this.prefix),
        this.activeKey(owner),
      ],
      [
        id,
        job.file,
        JSON.stringify(job.options),
        new Date(now).toISOString(),
        now,
        this.options.ttlSeconds,
        idempotencyKey === undefined ? '0' : '1',
        job.callbackUrl ?? '',
        this.history,
        randomUUID(),
        idempotencyKey ?? '',
        owner,
        job.activeLimit ?? 0,
      ],
    )) as [number, string, string[] | number];
    if (typeof record === 'number') { throw tooManyActiveJobs(owner, job.activeLimit ?? 0); }
    // The script returns the record it wrote (or found): no second round trip to read it.
    const stored = toCopy(fieldsOf(record));
    if (!stored) { throw new AppError('STORE_UNAVAILABLE', `job ${jobId} vanished while being created`, { status: 503 }); }
    return { ...stored, created: created === 1 };
  }

  /**
   * Records again a job Redis lost, from the durable copy its queue message carries: only when there is
   * no record of it and Redis's epoch is not the one the copy was made under (the same epoch means the
   * job expired or was removed, not lost). Queued, or with `running`, held by that attempt's lease.
   */
  async restore(copy: DurableCopy, running?: { attempt: number }): Promise<RestoreOutcome> {
    const now = this.now();
    return (await this.run(
      'restore',
      [
        this.jobKey(copy.id),
        this.key('jobs'),
        this.key('queued'),
        this.key('running'),
        this.key('seq'),
        this.idemKey(copy.owner ?? LOCAL_OWNER, copy.idempotencyKey),
        this.streams.events,
        epochKey(this.prefix),
      ],
      [
        copy.id,
        copy.file,
        JSON.stringify(copy.options),
        copy.createdAt,
        now,
        this.options.ttlSeconds,
        copy.idempotencyKey ?? '',
        copy.callback?.url ?? '',
        this.history,
        copy.epoch,
        randomUUID(),
        copy.owner ?? '',
        running?.attempt ?? 0,
        now + this.options.leaseMs,
        new Date(now).toISOString(),
      ],
    )) as RestoreOutcome;
  }

  private activeKey(owner: string): string {
    return this.key('active', owner);
  }

  /** Removes a job that was never published (the broker refused it), so a 503 leaves nothing behind. */
  async discard(id: string, idempotencyKey?: string, owner = LOCAL_OWNER): Promise<boolean> {
    const n = await this.run(
      'discard',
      [this.jobKey(id), this.key('jobs'), this.key('queued'), this.key('outbox'), this.idemKey(owner, idempotencyKey), this.streams.events, this.activeKey(owner)],
      [id, this.history],
    );
    return n === 1;
  }

  async markPublished(id: string): Promise<void> {
    await this.redis.zrem(this.key('outbox'), id);
  }

  /** Jobs recorded more than graceMs ago whose publication was never confirmed. */
  async unpublished(graceMs: number, limit = 100): Promise<string[]> {
    return this.redis.zrangebyscore(this.key('outbox'), '-inf', this.now() - graceMs, 'LIMIT', 0, limit);
  }

  async get(id: string): Promise<Job | undefined> {
    const h = await this.redis.hgetall(this.jobKey(id));
    return toJob(h);
  }

  /** The job and its durable copy (what its queue message carries), read together; undefined when there is no record. */
  async copy(id: string): Promise<{ job: Job; message: JobMessage } | undefined> {
    return toCopy(await this.redis.hgetall(this.jobKey(id)));
  }

  async claim(id: string): Promise<ClaimOutcome> {
    const now = this.now();
    const [kind, n] = (await this.run(
      'claim',
      [this.jobKey(id), this.key('queued'), this.key('running'), this.streams.events],
      [id, now + this.options.leaseMs, new Date(now).toISOString(), now, this.history],
    )) as [string, number];
    switch (kind) {
      case 'claimed':
        return { kind: 'claimed', attempt: Number(n) };
      case 'busy':
        return { kind: 'busy', leaseUntil: Number(n) };
      case 'missing':
        return { kind: 'missing' };
      default:
        return { kind: 'finished', status: kind as JobStatus };
    }
  }

  /** Renews the lease and records progress. Anything but 'ok' means this attempt no longer owns the job. */
  async heartbeat(id: string, attempt: number, progress?: Progress): Promise<RenewalState> {
    const [state] = await this.renew([{ id, attempt, progress }]);
    return state;
  }

  /** Renews many leases in one round trip; the states come back in the same order. */
  async renew(renewals: Renewal[]): Promise<RenewalState[]> {
    const until = this.now() + this.options.leaseMs;
    const lua = SCRIPTS.heartbeat.lua;
    const send = (byText: boolean) => {
      const pipeline = this.redis.pipeline();
      for (const { id, attempt, progress } of renewals) {
        const keys = [this.jobKey(id), this.key('running'), this.streams.progress];
        const argv = [...keys, id, attempt, until, progress ? JSON.stringify(progress) : ''];
        if (byText) { pipeline.eval(lua, keys.length, ...argv); }
        else { pipeline.evalsha(shaOf(lua), keys.length, ...argv); }
      }
      return this.confirmed(pipeline, 'lease renewal');
    };
    let replies = await send(false);
    // A server without the script ran none of those: send them all again by text (renewing twice is one renewal).
    if (replies.some(([err]) => isNoScript(err))) { replies = await send(true); }
    return replies.map(([err, state]) => {
      if (err) { throw err; }
      return state as RenewalState;
    });
  }

  /** Writes the outcome once; false when a newer attempt or a cancel got there first. */
  async finish(
    id: string,
    attempt: number,
    outcome: { result: JobResult } | { error: ErrorBody },
    progress?: Progress,
  ): Promise<boolean> {
    const [status, field, payload] =
      'result' in outcome
        ? ['succeeded', 'result', JSON.stringify(outcome.result)]
        : ['failed', 'error', JSON.stringify(outcome.error)];
    const now = this.now();
    const r = await this.run(
      'finish',
      [this.jobKey(id), this.key('running'), this.key('queued'), this.streams.events, this.key('callbacks')],
      [
        id,
        attempt,
        status,
        field,
        payload,
        new Date(now).toISOString(),
        this.options.ttlSeconds,
        progress ? JSON.stringify(progress) : '',
        now,
        this.history,
      ],
    );
    if (r === 2) { this.callbackDue?.(); }
    return r === 1 || r === 2;
  }

  /** Called when a result this process wrote made a callback due, so it can be delivered at once. */
  onCallbackDue(listener: () => void): void {
    this.callbackDue = listener;
  }

  /** Hands a running job back to the queue (shutdown, transient failure). */
  async release(id: string, attempt: number, lastError?: ErrorBody): Promise<boolean> {
    const r = await this.run(
      'release',
      [this.jobKey(id), this.key('running'), this.key('queued'), this.streams.events],
      [id, attempt, this.now(), lastError ? JSON.stringify(lastError) : '', this.history],
    );
    return r === 1;
  }

  /** Ends a job that is not yet final: 'ended', or the status it already had. */
  private async end(
    id: string,
    status: 'failed' | 'cancelled',
    error: ErrorBody | undefined,
  ): Promise<'ended' | JobStatus | 'missing'> {
    const now = this.now();
    const r = await this.run(
      'end',
      [this.jobKey(id), this.key('running'), this.key('queued'), this.key('outbox'), this.streams.events, this.key('callbacks')],
      [id, status, error ? JSON.stringify(error) : '', new Date(now).toISOString(), this.options.ttlSeconds, now, this.history],
    );
    return r as 'ended' | JobStatus | 'missing';
  }

  cancel(id: string): Promise<'ended' | JobStatus | 'missing'> {
    return this.end(id, 'cancelled', undefined);
  }

  /** Marks a dead-lettered job failed; the last transient error, if any, is kept as the reason. */
  failDeadLettered(id: string, fallback?: ErrorBody): Promise<'ended' | JobStatus | 'missing'> {
    return this.end(id, 'failed', fallback);
  }

  async counts(): Promise<ActiveCount> {
    const [[, queued], [, running]] = (await this.redis
      .multi()
      .zcard(this.key('queued'))
      .zcount(this.key('running'), `(${this.now()}`, '+inf')
      .exec()) as [[unknown, number], [unknown, number]];
    return { active: queued + running, queued, running };
  }

  /** Running jobs whose lease lapsed: their executor died or stalled, and no executor has claimed them again yet. */
  async expiredLeases(): Promise<number> {
    return this.redis.zcount(this.key('running'), '-inf', this.now());
  }

  /** Claims up to `limit` callbacks that are due; each is leased until `leaseUntil` (ms), when it is due again unless attempted. */
  async claimCallbacks(limit: number, leaseUntil: number): Promise<string[]> {
    return (await this.run('claimCallbacks', [this.key('callbacks')], [this.now(), leaseUntil, limit, this.key('job', '')])) as string[];
  }

  /** Records one delivery attempt; the callback is due again at `at` for a retry. The attempts so far, 0 when the job is gone. */
  async callbackAttempted(id: string, attempt: CallbackAttempt): Promise<number> {
    const at = attempt.outcome === 'retry' ? attempt.at : 0;
    return (await this.run('callbackAttempted', [this.jobKey(id), this.key('callbacks')], [id, attempt.outcome, at, attempt.error ?? ''])) as number;
  }

  /** When the next callback is due (ms), or undefined when none waits. */
  async nextCallbackDue(): Promise<number | undefined> {
    const [, score] = await this.redis.zrange(this.key('callbacks'), 0, 0, 'WITHSCORES');
    return score === undefined ? undefined : Number(score);
  }

  /** The newest event's id ('0-0' before the first), and the job as of that event, read together. */
  async snapshot(jobId?: string): Promise<{ tip: string; job?: Job }> {
    const multi = this.redis.multi().xrevrange(this.streams.events, '+', '-', 'COUNT', 1);
    if (jobId !== undefined) { multi.hgetall(this.jobKey(jobId)); }
    const replies = (await multi.exec()) ?? [];
    const [[err, last], [, hash] = [null, {}]] = replies as [[Error | null, [string, string[]][]], [Error | null, Record<string, string>]?];
    if (err) { throw err; }
    return { tip: last[0]?.[0] ?? '0-0', job: toJob(hash) };
  }

  /** State changes after `afterId`, oldest first; `complete` is false when the history no longer reaches back that far. */
  async eventsAfter(afterId: string, count: number): Promise<{ events: JobEvent[]; complete: boolean }> {
    const [[infoErr, info], [err, entries]] = (await this.redis
      .multi()
      .xinfo('STREAM', this.streams.events)
      .xrange(this.streams.events, `(${afterId}`, '+', 'COUNT', count)
      .exec()) as [[Error | null, unknown[]], [Error | null, [string, string[]][]]];
    if (err) { throw err; }
    const events = entries.map(([id, fields]) => decodeEvent('events', id, fields)).filter((e) => e !== undefined);
    // No stream yet: nothing was ever added, so nothing was missed.
    if (infoErr) { return { events, complete: true }; }
    const field = (name: string) => info[info.indexOf(name) + 1];
    const first = field('first-entry') as [string, string[]] | null;
    // Nothing trimmed ever (entries-added, Redis 7), or the oldest entry kept is at or before afterId.
    const untrimmed = Number(field('entries-added')) === Number(field('length'));
    return { events, complete: untrimmed || (first !== null && compareEventIds(first[0], afterId) <= 0) };
  }

  /** Newest first, of one owner when given. The cursor is the sequence number to continue below; a filter scans at most 20 batches a page. */
  async list(opts: { status?: JobStatus; owner?: string; limit: number; cursor?: string }): Promise<JobPage> {
    const jobs: Job[] = [];
    const batch = Math.max(opts.limit, 50);
    let max = opts.cursor === undefined ? '+inf' : `(${opts.cursor}`;
    for (let round = 0; round < 20; round++) {
      const entries = await this.redis.zrevrangebyscore(this.key('jobs'), max, '-inf', 'WITHSCORES', 'LIMIT', 0, batch);
      const ids = entries.filter((_, i) => i % 2 === 0);
      const pipeline = this.redis.pipeline();
      for (const id of ids) { pipeline.hgetall(this.jobKey(id)); }
      const hashes = (await pipeline.exec()) ?? [];
      const gone = ids.filter((_, i) => !hashes[i][1] || !(hashes[i][1] as Record<string, string>).id);
      if (gone.length) { await this.redis.zrem(this.key('jobs'), ...gone); }
      for (let i = 0; i < ids.length; i++) {
        const seq = entries[2 * i + 1];
        max = `(${seq}`;
        const job = toJob(hashes[i][1] as Record<string, string>);
        if (job && (opts.status === undefined || job.status === opts.status) && (opts.owner === undefined || job.owner === opts.owner)) { jobs.push(job); }
        if (jobs.length === opts.limit) { return { jobs, nextCursor: seq }; }
      }
      if (ids.length < batch) { return { jobs }; }
    }
    return { jobs, nextCursor: max.slice(1) };
  }

  /** Removes every key of this prefix: for tests and tenants being torn down. */
  async destroy(): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}:*`, 'COUNT', 500);
      if (keys.length) { await this.redis.del(...keys); }
      cursor = next;
    } while (cursor !== '0');
  }
}

/** The job and its durable copy, from its hash; undefined when there is no record. */
function toCopy(h: Record<string, string>): { job: Job; message: JobMessage } | undefined {
  const job = toJob(h);
  return job && { job, message: toMessage(h) };
}

/** The durable copy of a job, from its hash: what its queue message carries. */
function toMessage(h: Record<string, string>): JobMessage {
  const copy: Record<string, unknown> = { id: h.id, file: h.file, options: parseJson(h.options), createdAt: h.createdAt };
  for (const field of ['owner', 'idempotencyKey', 'epoch'] as const) { if (h[field]) { copy[field] = h[field]; } }
  if (h.callbackUrl) { copy.callback = { url: h.callbackUrl }; }
  return JobMessageSchema.parse(copy);
}

/** A job's hash read back through the job's schema, so a record that does not fit is refused rather than cast. */
function toJob(h: Record<string, string>): Job | undefined {
  if (!h.id) { return undefined; }
  const record: Record<string, unknown> = {
    id: h.id,
    owner: h.owner || LOCAL_OWNER,
    status: h.status,
    file: h.file,
    options: parseJson(h.options),
    createdAt: h.createdAt,
    attempts: Number(h.attempts),
    progress: parseJson(h.progress) ?? NO_PROGRESS,
  };
  for (const field of ['startedAt', 'finishedAt'] as const) { if (h[field]) { record[field] = h[field]; } }
  for (const field of ['result', 'error'] as const) { if (h[field]) { record[field] = parseJson(h[field]); } }
  if (h.callbackUrl) {
    record.callback = {
      url: h.callbackUrl,
      status: h.callbackStatus,
      attempts: Number(h.callbackAttempts ?? 0),
      ...(h.callbackError ? { lastError: h.callbackError } : {}),
    };
  }
  const parsed = JobSchema.safeParse(record);
  if (!parsed.success) {
    throw new AppError('INTERNAL', `job ${h.id}: the stored record does not fit the job schema (${parsed.error.issues.map((i) => i.path.join('.')).join(', ')})`, {
      status: 500,
      cause: parsed.error,
    });
  }
  return parsed.data;
}
