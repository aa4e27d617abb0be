import { pipeline } from 'node:stream/promises';
import express, { type Request, type Response, type Router } from 'express';
import { AppError, contentTypeOf, fileExists, formatLocation, type Location, type Logger, parseLocation, type Storage } from '@decisum/shared';

export interface FilesDeps {
  storage: Storage;
  logger: Logger;
}

/**
 * Files API, mounted at /api/v1/files: GET downloads, PUT uploads (streamed both ways), and a GET on
 * a path ending in / lists the files under it. A PUT with `If-None-Match: *` never replaces a file: 412 FILE_EXISTS.
 */
export function createFilesRouter({ storage, logger }: FilesDeps): Router {
  const router = express.Router();

  const get = async (req: Request, res: Response, loc: Location, folder: boolean) => {
    if (folder) {
      const entries = await storage.list(loc);
      const base = loc.kind === 's3' ? `s3://${loc.bucket}/` : '';
      res.json({
        location: formatLocation(loc),
        entries: entries.map((e) => ({
          path: e.path,
          location: `${base}${e.path}`,
          size: e.size,
          modified: e.modified.toISOString(),
        })),
      });
      return;
    }
    if (req.method === 'HEAD') {
      const info = await storage.stat(loc);
      setFileHeaders(res, loc, info);
      res.end();
      return;
    }
    const aborter = abortOnClose(res);
    const { info, body } = await storage.download(loc, aborter.signal);
    setFileHeaders(res, loc, info);
    try {
      await pipeline(body, res);
    } catch (err) {
      // Headers are out: all that is left is to cut the response so the client sees it short.
      if (!aborter.signal.aborted) { logger.warn({ err, location: formatLocation(loc) }, 'download failed mid-stream'); }
      res.destroy();
    }
  };

  const put = async (req: Request, res: Response, loc: Location, folder: boolean) => {
    if (folder) { throw new AppError('VALIDATION', 'PUT needs a file name, not a path ending in /', { status: 400 }); }
    const exclusive = createOnly(req);
    // Checked before the body is read too, so a client that will not replace a file is told at once.
    if (exclusive && (await exists(storage, loc))) { throw fileExists(formatLocation(loc)); }
    const length = req.headers['content-length'];
    const contentLength = length === undefined ? undefined : Number(length);
    const aborter = abortOnClose(res);
    const info = await storage.write(loc, req, { contentLength, signal: aborter.signal, exclusive });
    const location = formatLocation(loc);
    logger.info({ location, size: info.size }, 'file uploaded');
    res
      .status(201)
      .location(req.originalUrl)
      .json({ location, size: info.size, modified: info.modified.toISOString() });
  };

  router.get('/local{/*path}', (req, res) => get(req, res, ...localTarget(req)));
  router.put('/local{/*path}', (req, res) => put(req, res, ...localTarget(req)));
  router.get('/s3/:bucket{/*key}', (req, res) => get(req, res, ...s3Target(req)));
  router.put('/s3/:bucket{/*key}', (req, res) => put(req, res, ...s3Target(req)));
  return router;
}

/** `If-None-Match: *`: create, never replace. Entity tags are refused rather than ignored: nothing here compares them. */
function createOnly(req: Request): boolean {
  const value = req.headers['if-none-match'];
  if (value === undefined) { return false; }
  if (value.trim() === '*') { return true; }
  throw new AppError('VALIDATION', `If-None-Match: ${value} is not supported on PUT; send * to refuse replacing a file`, { status: 400 });
}

async function exists(storage: Storage, loc: Location): Promise<boolean> {
  try {
    await storage.stat(loc);
    return true;
  } catch (err) {
    if (err instanceof AppError && err.code === 'FILE_NOT_FOUND') { return false; }
    throw err;
  }
}

function segments(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

function isFolder(req: Request, rest: string[]): boolean {
  return rest.length === 0 || req.path.endsWith('/');
}

function localTarget(req: Request): [Location, boolean] {
  const rest = segments(req.params.path);
  // Empty segments collapse (a//b is a/b), but not a first one: local//abs/x.csv names /abs/x.csv, which parseLocation refuses.
  const rel = rest.filter((s, i) => s !== '' || i === 0).join('/');
  // A leading ./ keeps a path like "s3:/x" or "file:x" a local path, not a location scheme.
  const loc = parseLocation(/^[a-z][a-z0-9+.-]*:/i.test(rel) ? `./${rel}` : rel);
  return [loc, isFolder(req, rest)];
}

function s3Target(req: Request): [Location, boolean] {
  const rest = segments(req.params.key);
  const key = rest.join('/');
  const loc = parseLocation(`s3://${String(req.params.bucket)}/${key}`);
  return [loc, isFolder(req, rest)];
}

function setFileHeaders(res: Response, loc: Location, info: { size: number; modified: Date; etag?: string }): void {
  const name = loc.kind === 's3' ? loc.key : loc.path;
  res.setHeader('Content-Length', String(info.size));
  res.setHeader('Content-Type', contentTypeOf(name));
  res.setHeader('Last-Modified', info.modified.toUTCString());
  if (info.etag) { res.setHeader('ETag', info.etag); }
}

/** Aborts storage work when the client goes away before the response finished. */
function abortOnClose(res: Response): AbortController {
  const aborter = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) { aborter.abort(new Error('client closed the connection')); }
  });
  return aborter;
}
