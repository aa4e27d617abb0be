import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from './logger';

/**
 * The Redis epoch: a random id under `{prefix}:epoch`, written by the first decisum process that finds
 * none and never changed or expired after. Redis keeps it as long as it keeps the jobs, so a different
 * epoch than the one a process (or a queue message) saw means Redis lost its data in between: a
 * restart without persistence, a flush, a failover to an empty replica. The same epoch means the data
 * survived, and a job missing from it expired or was removed — provided Redis loses all or nothing:
 * an AOF fsynced once a second keeps the (old) epoch but may lose the last second of jobs.
 */

/** The key of the epoch under a prefix. */
export function epochKey(prefix: string): string {
  return `${prefix}:epoch`;
}

/**
 * Lua: the local `epoch` is the one under KEYS[key], written as ARGV[fresh] first when there is none;
 * `created` says whether this script wrote it. The job store's scripts that record a job use it too,
 * so a job always carries the epoch it was recorded under, whoever reached an empty Redis first.
 */
export const ensureEpochLua = (key: number, fresh: number): string => `
  local epoch = redis.call('GET', KEYS[${key}])
  local created = 0
  if not epoch then
    epoch = ARGV[${fresh}]
    redis.call('SET', KEYS[${key}], epoch)
    created = 1
  end`;

/** Reads the epoch, or writes a new one when there is none, in one step: every process agrees on the winner. */
const ENSURE = `${ensureEpochLua(1, 1)}
  return {epoch, created}`;

/** What a process knows of the epoch, for /readyz: the one it saw last, and how often it saw it change. */
export interface EpochReport {
  current?: string;
  /** Changes this process saw since it started: each means Redis lost its data. */
  changes: number;
  lastChange?: { at: string; previous: string; current: string };
}

export interface EpochChange {
  /** The epoch this process saw before. */
  previous: string;
  current: string;
  /** This process wrote the new epoch (it was the first to find Redis empty). */
  created: boolean;
}

export type EpochListener = (change: EpochChange) => void;

export class RedisEpoch {
  private readonly key: string;
  private known?: string;
  private readonly listeners: EpochListener[] = [];
  private seen: EpochReport = { changes: 0 };

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.key = epochKey(prefix);
  }

  /** The epoch this process last saw; undefined before the first ensure(). */
  get current(): string | undefined {
    return this.known;
  }

  /** The epoch Redis holds now, without writing one; undefined when it holds none. */
  async read(): Promise<string | undefined> {
    return (await this.redis.get(this.key)) ?? undefined;
  }

  /**
   * The epoch Redis holds, written first when there is none. When it differs from the one this process
   * saw before, the listeners hear of it once, however many calls race.
   */
  async ensure(): Promise<{ epoch: string; created: boolean }> {
    const [epoch, created] = (await this.redis.eval(ENSURE, 1, this.key, randomUUID())) as [string, number];
    const previous = this.known;
    this.known = epoch;
    if (previous !== undefined && previous !== epoch) {
      const change = { previous, current: epoch, created: created === 1 };
      this.seen = { changes: this.seen.changes + 1, lastChange: { at: new Date().toISOString(), previous, current: epoch } };
      for (const listener of this.listeners) { listener(change); }
    }
    return { epoch, created: created === 1 };
  }

  /** The epoch as this process knows it, and the changes it saw. */
  report(): EpochReport {
    return { current: this.known, ...this.seen };
  }

  /** Calls listener each time ensure() finds a new epoch. */
  onChange(listener: EpochListener): void {
    this.listeners.push(listener);
  }

  /**
   * Checks the epoch each time the client (re)connects, so a Redis that came back empty is noticed at
   * once, not at the next job. Returns a function that stops watching.
   */
  watch(logger: Logger): () => void {
    const check = () => {
      this.ensure().catch((err: unknown) => logger.warn({ err }, 'could not check the redis epoch after a reconnection'));
    };
    this.redis.on('ready', check);
    if (this.redis.status === 'ready') { check(); }
    return () => {
      this.redis.off('ready', check);
    };
  }
}

/**
 * Watches a process's epoch from its services: each change is logged at error level and counted in
 * decisum_redis_epoch_changes_total (alert on it). Returns a function that stops watching.
 */
export function watchEpoch(epoch: RedisEpoch, logger: Logger, registry: Registry): () => void {
  const changes = new Counter({
    name: 'decisum_redis_epoch_changes_total',
    help: 'Times this process found Redis with a new epoch: Redis lost its data (restart without persistence, flush, failover to an empty replica)',
    registers: [registry],
  });
  epoch.onChange(({ previous, current, created }) => {
    changes.inc();
    logger.error(
      { previousEpoch: previous, epoch: current, wroteIt: created },
      'redis lost its data (its epoch changed): jobs in the queue are recorded again from their messages, finished ones are read from the results archive',
    );
  });
  return epoch.watch(logger);
}
