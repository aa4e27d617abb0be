import type { ErrorRequestHandler, RequestHandler } from 'express';
import { AppError, isRedisUnavailable, type Logger, type Problem } from '@decisum/shared';

/** Any error reaching the client becomes an AppError: ours keep their code, the rest are 500s (or 503s for Redis). */
export function asAppError(err: unknown): AppError {
  if (err instanceof AppError) { return err; }
  const e = err as { type?: string; status?: number; message?: string; name?: string };
  if (e?.type === 'entity.parse.failed') { return new AppError('VALIDATION', 'the request body is not valid JSON', { status: 400 }); }
  if (e?.type === 'entity.too.large') { return new AppError('VALIDATION', 'the request body is too large', { status: 413 }); }
  if (isRedisUnavailable(err)) {
    return new AppError('STORE_UNAVAILABLE', 'the job store is unavailable; try again shortly', { status: 503, cause: err });
  }
  return new AppError('INTERNAL', 'internal error', { status: 500, expected: false, cause: err });
}

/** The problem+json fields that follow from a code alone. */
export function problemIdentity(code: string): { type: string; title: string } {
  return { type: `urn:decisum:problem:${code.toLowerCase().replace(/_/g, '-')}`, title: code.replace(/_/g, ' ').toLowerCase() };
}

/** RFC 9457 problem details with a stable `code`. */
export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) { return next(err); }
    const app = asAppError(err);
    if (app.expected) { logger.debug({ code: app.code, path: req.path }, app.message); }
    else { logger.error({ err, code: app.code, method: req.method, path: req.path }, 'request failed'); }
    if (app.retryAfter !== undefined) { res.setHeader('Retry-After', String(app.retryAfter)); }
    else if (app.status === 503) { res.setHeader('Retry-After', '2'); }
    const problem: Problem = { ...problemIdentity(app.code), status: app.status, detail: app.message, code: app.code };
    if (app.row !== undefined) { problem.row = app.row; }
    if (app.column !== undefined) { problem.column = app.column; }
    res.status(app.status).type('application/problem+json').json({ ...problem, ...app.details });
  };
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new AppError('NOT_FOUND', `no route for ${req.method} ${req.path}`, { status: 404 }));
};
