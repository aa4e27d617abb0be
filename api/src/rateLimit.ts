import type { RequestHandler } from 'express';
import { AppError, type Logger, type RateLimiter } from '@decisum/shared';
import type { Principal } from './auth';

/**
 * RATE_LIMIT_PER_MINUTE per owner and client address, with the IETF draft's `RateLimit-Policy` and
 * `RateLimit` headers on every answer and `Retry-After` on a 429. When Redis does not answer, requests
 * pass (logged): the routes that need Redis answer 503 themselves, the files API keeps working.
 */
export function rateLimit(limiter: RateLimiter, logger: Logger): RequestHandler {
  return (req, res, next) => {
    const principal = res.locals.principal as Principal | undefined;
    const client = `${principal?.owner ?? '-'}|${req.ip ?? req.socket.remoteAddress ?? '-'}`;
    limiter.take(client).then(
      (d) => {
        res.setHeader('RateLimit-Policy', `${d.limit};w=60`);
        res.setHeader('RateLimit', `limit=${d.limit}, remaining=${d.remaining}, reset=${d.resetSeconds}`);
        if (d.allowed) {
          next();
          return;
        }
        next(
          new AppError('RATE_LIMITED', `too many requests: the limit is ${d.limit} a minute (RATE_LIMIT_PER_MINUTE); try again in ${d.resetSeconds} s`, {
            status: 429,
            retryAfter: d.resetSeconds,
          }),
        );
      },
      (err: unknown) => {
        logger.warn({ err }, 'rate limit not checked: Redis did not answer');
        next();
      },
    );
  };
}
