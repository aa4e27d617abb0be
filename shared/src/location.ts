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
