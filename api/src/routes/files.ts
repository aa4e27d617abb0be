import { pipeline } from 'node:stream/promises';
import express, { type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import {
  AppError,
  contentTypeOf,
  fileExists,
  formatLocation,
  parseLocation,
  type FileListing,
  type FileWritten,
  type Location,
  type Limits,
  type Logger,
  type Storage,
} from '@decisum/shared';
import { BINARY, type ApiDocs, type Operation } from '../openapi';
import { parse } from '../validate';
import { checkDeclaredLength, checkFreeSpace, countedBody, type UploadLimits } from '../uploads';

/** `?limit=&cursor=` of a listing: at most LISTING_PAGE_SIZE a page; the cursor is the last path of the previous page. */
const ListingQuerySchema = (max: number) =>
  z
    .object({
      limit: z.coerce.number().int().min(1).max(max).optional().meta({ description: 'files in this page; LISTING_PAGE_SIZE (1000) at most and by default' }),
      cursor: z.string().min(1).max(4096).optional().meta({ description: "the previous page's `nextCursor`" }),
    })
    .strict();

export interface FilesDeps {
  storage: Storage;
  logger: Logger;
  /** DATA_DIR: its disk's free space is checked before a local upload. */
  dataDir: string;
  limits: UploadLimits & Pick<Limits, 'listingPage'>;
}

/**
 * Files API, mounted at /api/v1/files: GET downloads, PUT uploads (streamed both ways), and a GET on
 * a path ending in / lists the files under it. A PUT with `If-None-Match: *` never replaces a file: 412 FILE_EXISTS.
 */
export function createFilesRouter({ storage, logger, dataDir, limits }: FilesDeps, docs: ApiDocs, base: string): Router {
  const router = express.Router();

  const get = async (req: Request, res: Response, loc: Location, folder: boolean) => {
    if (folder) {
      const q = parse(ListingQuerySchema(limits.listingPage), req.query, 'query');
      const { entries, next } = await storage.list(loc, { limit: q.limit ?? limits.listingPage, after: q.cursor });
      const root = loc.kind === 's3' ? `s3://${loc.bucket}/` : '';
      const listing: FileListing = {
        location: formatLocation(loc),
        ...(next === undefined ? {} : { nextCursor: next }),
        entries: entries.map((e) => ({
          path: e.path,
          location: `${root}${e.path}`,
          size: e.size,
          modified: e.modified.toISOString(),
        })),
      };
      res.json(listing);
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
    refuseEncoded(req);
    const location = formatLocation(loc);
    const length = req.headers['content-length'];
    const contentLength = length === undefined ? undefined : Number(length);
    // A refused upload's body is not read: the connection closes after the answer instead of draining it.
    res.setHeader('Connection', 'close');
    checkDeclaredLength(contentLength, location, limits);
    if (loc.kind === 'local') { await checkFreeSpace(dataDir, contentLength, location, limits); }
    const exclusive = createOnly(req);
    // Checked before the body is read too, so a client that will not replace a file is told at once.
    if (exclusive && (await exists(storage, loc))) { throw fileExists(location); }
    res.removeHeader('Connection');
    const aborter = abortOnClose(res);
    const counted = countedBody(req, location, limits.uploadBytes);
    let info;
    try {
      info = await storage.write(loc, counted.body, { contentLength, signal: aborter.signal, exclusive });
    } catch (err) {
      const tooLarge = counted.tripped();
      if (tooLarge) { res.setHeader('Connection', 'close'); }
      throw tooLarge ?? err;
    }
    logger.info({ location, size: info.size }, 'file uploaded');
    const written: FileWritten = { location, size: info.size, modified: info.modified.toISOString() };
    res.status(201).location(req.originalUrl).json(written);
  };

  const routes = docs.routes(router, base);
  const op = operations(docs);
  // A path ending in / (or none at all) lists the folder: one express pattern serves both documented paths.
  routes.add('get', '/local{/*path}', (req, res) => get(req, res, ...localTarget(req)), op.localListing, op.localDownload);
  routes.add('put', '/local{/*path}', (req, res) => put(req, res, ...localTarget(req)), op.localUpload);
  routes.add('get', '/s3/:bucket{/*key}', (req, res) => get(req, res, ...s3Target(req)), op.s3Listing, op.s3Download);
  routes.add('put', '/s3/:bucket{/*key}', (req, res) => put(req, res, ...s3Target(req)), op.s3Upload);
  return router;
}

/** The files API's OpenAPI operations, by route. */
function operations(docs: ApiDocs) {
  const { FileListing, FileWritten } = docs.schemas;
  const modified = '2025-01-01T12:00:00.000Z';
  const failures = {
    ...docs.problems(
      [400, 'A path outside DATA_DIR (PATH_OUTSIDE_DATA_DIR), an S3 key with an empty, `.` or `..` segment (INVALID_LOCATION), or an invalid bucket name', 'PATH_OUTSIDE_DATA_DIR', '../x.csv is outside DATA_DIR: give a path relative to it'],
      [403, 'Storage refused access (FILE_ACCESS_DENIED), or the bucket is outside S3_BUCKETS (LOCATION_NOT_ALLOWED)', 'FILE_ACCESS_DENIED', 'access denied to s3://decisum/data.csv'],
      [404, 'The file or its bucket does not exist (FILE_NOT_FOUND, BUCKET_NOT_FOUND)', 'FILE_NOT_FOUND', 'reports/a.csv does not exist'],
      [503, 'Storage is unreachable', 'STORAGE_UNAVAILABLE', 'storage did not answer; try again shortly'],
    ),
  };
  const listing = (example: FileListing) => ({
    200: { description: 'The files under the folder, recursively', content: { 'application/json': { schema: FileListing, example } } },
    ...failures,
  });
  const download = {
    200: {
      description: 'The file, streamed; a path ending in `/` lists the folder instead (see the listing operation)',
      content: {
        'text/csv': { schema: BINARY },
        'application/octet-stream': { schema: BINARY },
        'application/json': { schema: FileListing },
      },
    },
    ...failures,
  };
  const upload = (location: string) => ({
    201: {
      description: "Written; `Location` is the file's URL",
      content: { 'application/json': { schema: FileWritten, example: { location, size: 311_548, modified } } },
    },
    ...failures,
    ...docs.problems(
      [412, 'With `If-None-Match: *`: the file exists, and was left as it was', 'FILE_EXISTS', `${location} already exists`],
      [413, 'The body is over MAX_UPLOAD_BYTES (declared or as streamed); nothing is kept', 'UPLOAD_TOO_LARGE', `${location}: uploads are limited to 1073741824 bytes (MAX_UPLOAD_BYTES)`],
      [507, 'A local upload would leave less than MIN_FREE_BYTES free under DATA_DIR', 'INSUFFICIENT_STORAGE', `${location}: not enough free space under DATA_DIR; uploads keep at least 1073741824 bytes free (MIN_FREE_BYTES)`],
    ),
  });
  const createOnlyHeader = z.object({
    'If-None-Match': z.literal('*').optional().meta({ description: '`*`: create the file, never replace one (412 `FILE_EXISTS` if it exists)' }),
  });
  const body = {
    required: true,
    description: "The file's bytes, streamed to storage (send `Content-Length` when known)",
    content: { 'application/octet-stream': { schema: BINARY }, 'text/csv': { schema: BINARY } },
  };
  const localPath = z.object({ path: z.string().meta({ description: 'path under DATA_DIR; may contain `/`', example: 'reports/a.csv' }) });
  const bucket = z.string().meta({ example: 'decisum' });
  const s3Params = z.object({ bucket, key: z.string().meta({ description: 'object key; may contain `/`', example: 'data.csv' }) });
  const tags = ['files'];
  return {
    localListing: {
      path: '/local/',
      tags,
      summary: 'List the files under DATA_DIR',
      description: 'Any path ending in `/` lists that folder: `/api/v1/files/local/reports/`.',
      request: { query: ListingQuerySchema(1000) },
      responses: listing({ location: '', entries: [{ path: 'data.csv', location: 'data.csv', size: 311_548, modified }] }),
    },
    localDownload: {
      path: '/local/{path}',
      tags,
      summary: 'Download a local file (or list a folder: end the path with `/`)',
      request: { params: localPath },
      responses: download,
    },
    localUpload: {
      path: '/local/{path}',
      tags,
      summary: 'Upload a local file',
      description:
        'Streams the body to DATA_DIR/path, creating folders; the file appears whole or not at all. An existing file is replaced unless `If-None-Match: *` is sent.',
      request: { params: localPath, headers: createOnlyHeader, body },
      responses: upload('reports/a.csv'),
    },
    s3Listing: {
      path: '/s3/{bucket}/',
      tags,
      summary: 'List the objects of a bucket',
      description: 'Any key ending in `/` lists that prefix: `/api/v1/files/s3/decisum/reports/`.',
      request: { params: z.object({ bucket }), query: ListingQuerySchema(1000) },
      responses: listing({
        location: 's3://decisum/',
        entries: [{ path: 'data.csv', location: 's3://decisum/data.csv', size: 311_548, modified }],
      }),
    },
    s3Download: {
      path: '/s3/{bucket}/{key}',
      tags,
      summary: 'Download an S3 object (or list a prefix: end the key with `/`)',
      request: { params: s3Params },
      responses: download,
    },
    s3Upload: {
      path: '/s3/{bucket}/{key}',
      tags,
      summary: 'Upload an S3 object',
      request: { params: s3Params, headers: createOnlyHeader, body },
      responses: upload('s3://decisum/data.csv'),
    },
  } satisfies Record<string, Operation>;
}

/** `If-None-Match: *`: create, never replace. Entity tags are refused rather than ignored: nothing here compares them. */
function createOnly(req: Request): boolean {
  const value = req.headers['if-none-match'];
  if (value === undefined) { return false; }
  if (value.trim() === '*') { return true; }
  throw new AppError('VALIDATION', `If-None-Match: ${value} is not supported on PUT; send * to refuse replacing a file`, { status: 400 });
}

/** The body is stored as sent: an encoded one (gzip, compress) would be stored encoded, so it is refused. */
function refuseEncoded(req: Request): void {
  const encoding = req.headers['content-encoding']?.trim().toLowerCase();
  if (encoding === undefined || encoding === '' || encoding === 'identity') { return; }
  throw new AppError('UNSUPPORTED_MEDIA_TYPE', `Content-Encoding ${encoding.slice(0, 40)} is not supported on upload: send the file's bytes as they are`, { status: 415 });
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

/** A download is a file to save, never a page to render in the API's origin: attachment, and nosniff. */
function setFileHeaders(res: Response, loc: Location, info: { size: number; modified: Date; etag?: string }): void {
  const name = loc.kind === 's3' ? loc.key : loc.path;
  res.attachment(name.split('/').pop() || 'download');
  res.setHeader('X-Content-Type-Options', 'nosniff');
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
