import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import { AppError } from '../errors';
import type { Location } from '../location';
import {
  accessDenied,
  cancelled,
  fileChanged,
  fileExists,
  fileNotFound,
  pauseBeforeRetry,
  type ReadPolicy,
  storageUnavailable,
  withIdleTimeout,
} from './backoff';
import type { ListEntry, ObjectInfo, ReadHandle, ReadOptions, Storage, WriteOptions } from './types';

export interface S3StorageOptions {
  client: S3Client;
  /**
   * Client for GetObject in read(); defaults to client. Give it maxAttempts 1 so the SDK's retries
   * do not multiply the read's own.
   */
  readClient?: S3Client;
  reads: ReadPolicy;
  /** Multipart upload part size; 8 MiB when absent (S3's minimum is 5 MiB). */
  partSize?: number;
  /** Parts uploaded at once; memory held is about partSize × queueSize. */
  queueSize?: number;
}

interface Key {
  bucket: string;
  key: string;
  where: string;
}

export class S3Storage implements Storage {
  private readonly client: S3Client;
  private readonly readClient: S3Client;
  private readonly policy: ReadPolicy;
  private readonly partSize: number;
  private readonly queueSize: number;

  constructor(options: S3StorageOptions) {
    this.client = options.client;
    this.readClient = options.readClient ?? options.client;
    this.policy = options.reads;
    this.partSize = options.partSize ?? 8 * 1024 * 1024;
    this.queueSize = options.queueSize ?? 4;
  }

  async stat(loc: Location): Promise<ObjectInfo> {
    const k = objectKey(loc);
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: k.bucket, Key: k.key }));
      return { size: out.ContentLength ?? 0, modified: out.LastModified ?? new Date(0), etag: out.ETag };
    } catch (err) {
      throw mapS3Error(err, k.where, false) ?? storageUnavailable(k.where, 1, err);
    }
  }

  async read(loc: Location, options: ReadOptions = {}): Promise<ReadHandle> {
    const k = objectKey(loc);
    const { signal } = options;
    const policy = this.policy;
    const client = this.readClient;
    // Aborts the request in flight when the caller aborts or closes the handle.
    const inflight = new AbortController();
    const onAbort = () => inflight.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });

    let etag: string | undefined;
    let size = 0;
    let modified = new Date(0);
    let offset = 0;
    let attempt = 0;
    let body: Readable | undefined;

    const backoff = (err: unknown): Promise<void> => pauseBeforeRetry(k.where, ++attempt, offset, err, policy, options);

    // GetObject from offset; every response after the first must be the same object version.
    const request = async (): Promise<Readable> => {
      for (;;) {
        if (signal?.aborted) { throw cancelled(signal); }
        const resumed = etag !== undefined;
        try {
          const out = await client.send(
            new GetObjectCommand({
              Bucket: k.bucket,
              Key: k.key,
              Range: resumed ? `bytes=${offset}-` : undefined,
              IfMatch: etag,
            }),
            { abortSignal: inflight.signal, requestTimeout: policy.idleTimeoutMs },
          );
          const stream = out.Body as Readable;
          if (!resumed) {
            etag = out.ETag;
            size = out.ContentLength ?? 0;
            modified = out.LastModified ?? modified;
            return stream;
          }
          // s3rver ignores If-Match, so compare ourselves; real S3 and MinIO answer 412 instead.
          const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(out.ContentRange ?? '');
          const problem =
            out.ETag !== etag
              ? `ETag ${etag} → ${out.ETag}`
              : !range || Number(range[3]) !== size
                ? `size ${size} → ${out.ContentRange ?? 'unknown'}`
                : Number(range[1]) !== offset
                  ? `asked for byte ${offset}, got ${out.ContentRange}`
                  : undefined;
          if (problem !== undefined) {
            stream.destroy();
            throw fileChanged(k.where, problem);
          }
          return stream;
        } catch (err) {
          if (err instanceof AppError) { throw err; }
          if (signal?.aborted) { throw cancelled(signal); }
          const permanent = mapS3Error(err, k.where, resumed);
          if (permanent) { throw permanent; }
          await backoff(err);
        }
      }
    };

    try {
      body = await request();
    } catch (err) {
      signal?.removeEventListener('abort', onAbort);
      throw err;
    }
    const info: ObjectInfo = { size, modified, etag };

    async function* chunks(): AsyncGenerator<Buffer> {
      try {
        for (;;) {
          if (!body) {
            if (offset >= size) { return; }
            body = await request();
          }
          const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
          try {
            for (;;) {
              const next = await withIdleTimeout(it.next(), policy.idleTimeoutMs);
              if (next.done) { break; }
              offset += next.value.length;
              attempt = 0;
              yield next.value;
            }
          } catch (err) {
            if (signal?.aborted) { throw cancelled(signal); }
            body.destroy();
            body = undefined;
            await backoff(err);
            continue;
          }
          body = undefined;
          if (offset === size) { return; }
          if (offset > size) { throw fileChanged(k.where, `read ${offset} bytes of ${size}`); }
          // Premature end: the server closed cleanly before Content-Length.
          await backoff(new Error(`the response ended at byte ${offset} of ${size}`));
        }
      } finally {
        body?.destroy();
        body = undefined;
        signal?.removeEventListener('abort', onAbort);
      }
    }

    const iterator = chunks();
    return {
      info,
      chunks: { [Symbol.asyncIterator]: () => iterator },
      close: () => {
        inflight.abort();
        body?.destroy();
        body = undefined;
        signal?.removeEventListener('abort', onAbort);
        void iterator.return(undefined).catch(() => undefined);
      },
    };
  }

  /** The resumable read as a stream: downloads survive the same faults as jobs. */
  async download(loc: Location, signal?: AbortSignal): Promise<{ info: ObjectInfo; body: Readable }> {
    const handle = await this.read(loc, { signal });
    const body = Readable.from(handle.chunks, { objectMode: false });
    body.once('close', () => handle.close());
    return { info: handle.info, body };
  }

  async write(loc: Location, body: Readable, options: WriteOptions = {}): Promise<ObjectInfo> {
    const k = objectKey(loc);
    if (k.key.endsWith('/')) {
      throw new AppError('VALIDATION', `${k.where} names a folder: give a key`, { status: 400 });
    }
    const upload = new Upload({
      client: this.client,
      // IfNoneMatch reaches PutObject and CompleteMultipartUpload: S3 refuses a taken key at the moment it commits.
      params: { Bucket: k.bucket, Key: k.key, Body: body, ContentType: contentTypeOf(k.key), ...(options.exclusive ? { IfNoneMatch: '*' } : {}) },
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    const onAbort = () => void upload.abort().catch(() => undefined);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await upload.done();
    } catch (err) {
      if (options.signal?.aborted) { throw cancelled(options.signal); }
      if (options.exclusive && (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 412) { throw fileExists(k.where); }
      throw mapS3Error(err, k.where, false) ?? storageUnavailable(k.where, 1, err);
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
    return this.stat(loc);
  }

  async list(loc: Location): Promise<ListEntry[]> {
    const k = objectKey(loc, true);
    const entries: ListEntry[] = [];
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({ Bucket: k.bucket, Prefix: k.key || undefined, ContinuationToken: token }),
        );
      } catch (err) {
        throw mapS3Error(err, `s3://${k.bucket}`, false) ?? storageUnavailable(k.where, 1, err);
      }
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) { continue; }
        entries.push({ path: o.Key, size: o.Size ?? 0, modified: o.LastModified ?? new Date(0) });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return entries;
  }
}

function objectKey(loc: Location, prefix = false): Key {
  if (loc.kind !== 's3') { throw new AppError('INTERNAL', `S3Storage cannot handle ${loc.kind} locations`); }
  if (!prefix && loc.key === '') {
    throw new AppError('VALIDATION', `s3://${loc.bucket}/ needs a key`, { status: 400 });
  }
  return { bucket: loc.bucket, key: loc.key, where: `s3://${loc.bucket}/${loc.key}` };
}

export function contentTypeOf(name: string): string {
  return /\.(csv|tsv|txt)$/i.test(name) ? 'text/csv' : 'application/octet-stream';
}

/**
 * The AppError for an S3 failure that retrying cannot fix, or undefined for a transient one
 * (5xx, throttling, timeouts, dropped connections).
 */
export function mapS3Error(err: unknown, where: string, resumed: boolean): AppError | undefined {
  if (err instanceof AppError) { return err; }
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  const name = e?.Code ?? e?.name ?? '';
  const status = e?.$metadata?.httpStatusCode;
  if (name === 'NoSuchBucket') {
    return new AppError('FILE_NOT_FOUND', `${where}: the bucket does not exist`, { status: 404, permanent: true, cause: err });
  }
  if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) { return fileNotFound(where, err); }
  if (['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AllAccessDisabled', 'Forbidden'].includes(name) || status === 403) {
    return accessDenied(where, err);
  }
  if (name === 'PreconditionFailed' || status === 412) { return fileChanged(where, 'the ETag no longer matches', err); }
  if (name === 'InvalidRange' || status === 416) {
    return resumed
      ? fileChanged(where, 'the object is shorter than the bytes already read', err)
      : new AppError('VALIDATION', `${where}: invalid range`, { status: 400, permanent: true, cause: err });
  }
  if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) {
    return new AppError('VALIDATION', `${where}: S3 refused the request (${name || status})`, {
      status: 400,
      permanent: true,
      cause: err,
    });
  }
  return undefined;
}
