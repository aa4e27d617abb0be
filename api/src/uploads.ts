import fs from 'node:fs';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { AppError, errnoOf, type Limits } from '@decisum/shared';

export type UploadLimits = Pick<Limits, 'uploadBytes' | 'minFreeBytes'>;

export function uploadTooLarge(location: string, limit: number): AppError {
  return new AppError('UPLOAD_TOO_LARGE', `${location}: uploads are limited to ${limit} bytes (MAX_UPLOAD_BYTES)`, { status: 413 });
}

/** 413 at once when the declared length is over the limit: nothing of the body is read. */
export function checkDeclaredLength(contentLength: number | undefined, location: string, limits: UploadLimits): void {
  if (contentLength !== undefined && contentLength > limits.uploadBytes) { throw uploadTooLarge(location, limits.uploadBytes); }
}

/**
 * The body, counted as it streams: past the limit it fails with UPLOAD_TOO_LARGE, which the storage
 * write sees as a failed body (the partial file is removed, a multipart upload aborted). `tripped`
 * holds that error once it happened, so the caller answers with it whatever the storage made of it.
 */
export function countedBody(req: Readable, location: string, limit: number): { body: Readable; tripped: () => AppError | undefined } {
  let seen = 0;
  let tripped: AppError | undefined;
  const body = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > limit) {
        tripped = uploadTooLarge(location, limit);
        callback(tripped);
        return;
      }
      callback(null, chunk);
    },
  });
  // The storage write's pipeline reports the error; this keeps one emitted after it let go from crashing the process.
  body.on('error', () => undefined);
  req.once('error', (err) => body.destroy(err));
  req.pipe(body);
  return { body, tripped: () => tripped };
}

/** The free bytes on the disk holding dir (or its nearest existing parent), for unprivileged writers. */
async function freeBytes(dir: string): Promise<number> {
  for (let at = dir; ; at = path.dirname(at)) {
    try {
      const st = await fs.promises.statfs(at);
      return st.bavail * st.bsize;
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT' || path.dirname(at) === at) { throw err; }
    }
  }
}

/** 507 when writing contentLength more bytes under dataDir would leave less than MIN_FREE_BYTES free. */
export async function checkFreeSpace(dataDir: string, contentLength: number | undefined, location: string, limits: UploadLimits): Promise<void> {
  if (limits.minFreeBytes === 0) { return; }
  const free = await freeBytes(dataDir);
  if (free - (contentLength ?? 0) < limits.minFreeBytes) {
    throw new AppError(
      'INSUFFICIENT_STORAGE',
      `${location}: not enough free space under DATA_DIR; uploads keep at least ${limits.minFreeBytes} bytes free (MIN_FREE_BYTES)`,
      { status: 507 },
    );
  }
}
