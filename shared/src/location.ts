import path from 'node:path';
import { AppError } from './errors';

export type Location = { kind: 'local'; path: string } | { kind: 's3'; bucket: string; key: string };

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function outside(input: string): AppError {
  return new AppError('PATH_OUTSIDE_DATA_DIR', `${input} is outside DATA_DIR: give a path relative to it`, {
    status: 400,
  });
}

/** decisum's own folder under DATA_DIR (the results archive by default): never listed, read or written through the API. */
export const RESERVED_DIR = '.decisum';

/** Whether a local path (relative to DATA_DIR, normalised) lies in decisum's own folder. */
export function isReserved(relative: string): boolean {
  return relative === RESERVED_DIR || relative.startsWith(`${RESERVED_DIR}/`);
}

/** Decoded once as a server or proxy might; a malformed escape stays as written. */
function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * The first empty, `.` or `..` segment of an S3 key, as written or percent-decoded; undefined when
 * there is none. The SDK sends such keys unchanged and a server or proxy that normalises paths would
 * land in another bucket. Only a trailing `/` (a folder to list) is allowed; `''` is the bucket's root.
 */
export function badKeySegment(key: string): string | undefined {
  if (key === '') { return undefined; }
  const segments = key.split('/');
  if (key.endsWith('/')) { segments.pop(); }
  return segments.find((s) => [s, decoded(s)].some((v) => v === '' || v === '.' || v === '..'));
}

/** INVALID_LOCATION (400) for a key with an empty, `.` or `..` segment. */
export function checkKey(input: string, key: string): void {
  const bad = badKeySegment(key);
  if (bad === undefined) { return; }
  const what = bad === '' ? 'an empty segment (//)' : `a "${bad}" segment`;
  throw new AppError('INVALID_LOCATION', `${input}: the key has ${what}; keys may not have empty, . or .. segments`, { status: 400 });

}

/**
 * Parses a job's file: `s3://bucket/key`, `file:relative/path` or `relative/path`.
 * Local paths come back normalised and relative to DATA_DIR; anything that would leave it is refused.
 */
export function parseLocation(input: string): Location {
  if (input.startsWith('s3://')) {
    const rest = input.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const key = slash < 0 ? '' : rest.slice(slash + 1);
    if (!BUCKET.test(bucket)) {
      throw new AppError('VALIDATION', `${input}: "${bucket}" is not a valid bucket name`, { status: 400 });
    }
    checkKey(input, key);
    return { kind: 's3', bucket, key };
  }
  const raw = input.startsWith('file:') ? input.slice('file:'.length).replace(/^\/\/(?=\/)/, '') : input;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    throw new AppError('VALIDATION', `${input}: only s3:// and local paths are supported`, { status: 400 });
  }
  if (raw.includes('\0')) { throw new AppError('VALIDATION', 'file must not contain NUL bytes', { status: 400 }); }
  if (path.isAbsolute(raw) || path.win32.isAbsolute(raw)) { throw outside(input); }
  const normal = path.posix.normalize(raw.replace(/\\/g, '/'));
  if (normal === '..' || normal.startsWith('../')) { throw outside(input); }
  if (isReserved(normal)) {
    throw new AppError('PATH_RESERVED', `${input}: ${RESERVED_DIR}/ is decisum's own folder`, { status: 403 });
  }
  return { kind: 'local', path: normal === '.' ? '' : normal };
}

export function formatLocation(loc: Location): string {
  return loc.kind === 's3' ? `s3://${loc.bucket}/${loc.key}` : loc.path;
}
