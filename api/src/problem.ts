import type { ErrorRequestHandler, RequestHandler } from 'express';
import { AppError, isRedisUnavailable, redact, type Logger, type Problem } from '@decisum/shared';

/** What body-parser and the router throw at a malformed request (http-errors with `expose`), as our errors. */
function clientError(e: { type?: string; status?: number; expose?: boolean; message?: string; limit?: number; charset?: string; encoding?: string }): AppError | undefined {
  if (e.type === 'entity.parse.failed') { return new AppError('VALIDATION', 'the request body is not valid JSON', { status: 400 }); }
  if (e.type === 'entity.too.large') {
    const limit = e.limit === undefined ? 'this route takes' : `of ${e.limit} bytes this route takes`;
    return new AppError('PAYLOAD_TOO_LARGE', `the request body is larger than the limit ${limit}`, { status: 413 });
  }
  if (e.type === 'charset.unsupported') {
    return new AppError('UNSUPPORTED_MEDIA_TYPE', `charset ${String(e.charset).slice(0, 40)} is not supported: send UTF-8 JSON`, { status: 415 });
  }
  if (e.type === 'encoding.unsupported') {
    return new AppError('UNSUPPORTED_MEDIA_TYPE', `Content-Encoding ${String(e.encoding).slice(0, 40)} is not supported: send the body uncompressed, or gzip, deflate or br`, { status: 415 });
  }
  if (e.expose && typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    return new AppError('MALFORMED_REQUEST', e.message ?? 'malformed request', { status: e.status });
  }
  return undefined;
}

/** Any error reaching the client becomes an AppError: ours keep their code, a malformed request is a 4xx, the rest are 500s (or 503s for Redis). */
export function asAppError(err: unknown): AppError {
  if (err instanceof AppError) { return err; }
  // The router's decoding of a path parameter: %c0%ae, a lone %.
  if (err instanceof URIError) { return new AppError('MALFORMED_REQUEST', 'the path holds a malformed percent-encoding', { status: 400 }); }
  const client = err !== null && typeof err === 'object' ? clientError(err) : undefined;
  if (client) { return client; }
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
    for (const [name, value] of Object.entries(app.headers ?? {})) { res.setHeader(name, value); }
    const problem: Problem = { ...problemIdentity(app.code), status: app.status, detail: redact(app.message), code: app.code };
    if (app.row !== undefined) { problem.row = app.row; }
    if (app.column !== undefined) { problem.column = app.column; }
    res.status(app.status).type('application/problem+json').json({ ...problem, ...app.details });
  };
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new AppError('NOT_FOUND', `no route for ${req.method} ${req.path}`, { status: 404 }));
};
