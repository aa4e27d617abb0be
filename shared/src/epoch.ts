import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from './logger';

/**
 * The Redis epoch: a random id under `{prefix}:epoch`, written by the first decisum process that finds
 * none and never changed or expired after. Redis keeps it as long as it keeps the jobs, so a different
 * epoch than the one a process (or a queue message) saw means Redis lost its data in between: a
 * restart without persistence, a flush, a failover to an empty replica. The same epoch means the data
 * survived, and a job missing from it expired or was removed — provided Redis loses all or nothing:
 * an AOF fsynced once a second keeps the (old) epoch but may lose the last second of jobs.
 */

/** Reads the epoch, or writes a new one when there is none, in one step: every process agrees on the winner. */
const ENSURE = `
  local epoch = redis.call('GET', KEYS[1])
  if epoch then return {epoch, 0} end
  redis.call('SET', KEYS[1], ARGV[1])
  return {ARGV[1], 1}`;

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

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.key = `${prefix}:epoch`;
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
      for (const listener of this.listeners) { listener(change); }
    }
    return { epoch, created: created === 1 };
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
