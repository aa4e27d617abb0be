import type { Redis } from 'ioredis';

/** Lua: one fixed window's counter, made on first use to expire with the window; the count and the ms left. */
const COUNT = `
  local n = redis.call('INCR', KEYS[1])
  if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
  return {n, ttl}`;

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the window resets. */
  resetSeconds: number;
}

/**
 * Requests per client per minute, counted in Redis (one script, one round trip), so every API
 * process draws on the same budget. A fixed window: a client may send up to twice the limit across a
 * window's edge, which is the price of one counter per client.
 */
export class RateLimiter {
  private readonly windowMs = 60_000;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    readonly perMinute: number,
  ) {}

  async take(client: string): Promise<RateDecision> {
    const window = Math.floor(Date.now() / this.windowMs);
    const key = `${this.prefix}:rate:${window}:${client}`;
    const [count, ttl] = (await this.redis.eval(COUNT, 1, key, this.windowMs)) as [number, number];
    return {
      allowed: count <= this.perMinute,
      limit: this.perMinute,
      remaining: Math.max(0, this.perMinute - count),
      resetSeconds: Math.max(1, Math.ceil(ttl / 1000)),
    };
  }
}
