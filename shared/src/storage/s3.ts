import { HeadObjectCommand, ListObjectsV2Command, type ListObjectsV2CommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import { AppError } from '../errors';
import type { Location } from '../location';
import { cancelled, fileExists, type ReadPolicy, storageUnavailable } from './backoff';
import { mapS3Error } from './s3-errors';
import { probeObject, S3Object, type S3Key } from './s3-object';
import { pageOf } from './listing';
import type { ListEntry, ListPage, ListResult, ObjectInfo, ObjectReader, ReadOptions, Storage, WriteOptions } from './types';

export interface S3StorageOptions {
  client: S3Client;
  /**
   * Client for GetObject in read(); defaults to client. Give it maxAttempts 1 so the SDK's retries
   * do not multiply the read's own.
   */
  readClient?: S3Client;
  reads: ReadPolicy;
  /** Bytes per ranged GET of a parallel read; 8 MiB when absent. */
  readPartBytes?: number;
  /** Ranged GETs one read keeps in flight; 16 when absent, 1 reads an object as one stream. */
  readConcurrency?: number;
  /** Multipart upload part size; 8 MiB when absent (S3's minimum is 5 MiB). */
  partSize?: number;
  /** Parts uploaded at once; memory held is about partSize × queueSize. */
  queueSize?: number;
}

export class S3Storage implements Storage {
  private readonly client: S3Client;
  private readonly readClient: S3Client;
  private readonly policy: ReadPolicy;
  private readonly readPartBytes: number;
  private readonly readConcurrency: number;
  private readonly partSize: number;
  private readonly queueSize: number;

  constructor(options: S3StorageOptions) {
    this.client = options.client;
    this.readClient = options.readClient ?? options.client;
    this.policy = options.reads;
    this.readPartBytes = options.readPartBytes ?? 8 * 1024 * 1024;
    this.readConcurrency = options.readConcurrency ?? 16;
    this.partSize = options.partSize ?? 8 * 1024 * 1024;
    this.queueSize = options.queueSize ?? 4;
  }

  async stat(loc: Location): Promise<ObjectInfo> {
    const k = objectKey(loc);
    return probeObject(this.client, k).catch((err: unknown) => {
      throw mapS3Error(err, k.where) ?? storageUnavailable(k.where, 1, err);
    });
  }

  open(loc: Location, options: ReadOptions = {}): Promise<ObjectReader> {
    const settings = { policy: this.policy, partBytes: this.readPartBytes, concurrency: this.readConcurrency };
    return S3Object.open(this.readClient, objectKey(loc), settings, options);
  }

  /** The resumable, parallel read as a stream: downloads survive the same faults as jobs. */
  async download(loc: Location, signal?: AbortSignal): Promise<{ info: ObjectInfo; body: Readable }> {
    const object = await this.open(loc, { signal });
    // The stream may hold chunks after asking for more, and the reader reuses their memory: copy them.
    const copies = async function* () {
      for await (const chunk of object.chunks()) { yield Buffer.from(chunk); }
    };
    const body = Readable.from(copies(), { objectMode: false });
    body.once('close', () => void object.close());
    return { info: object.info, body };
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
    // Just written, so bucket and credentials are good: a HEAD, which the SDK retries and which has no
    // body for a server to cut mid-way (as s3rver does under concurrent writes), is enough here.
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: k.bucket, Key: k.key }));
      return { size: out.ContentLength ?? 0, modified: out.LastModified ?? new Date(0), etag: out.ETag };
    } catch (err) {
      throw mapS3Error(err, k.where) ?? storageUnavailable(k.where, 1, err);
    }
  }

  /** ListObjectsV2 from StartAfter, as many requests as the page needs (S3 answers at most 1000 keys each). */
  async list(loc: Location, page: ListPage): Promise<ListResult> {
    const k = objectKey(loc, true);
    const entries: ListEntry[] = [];
    let token: string | undefined;
    do {
      let out: ListObjectsV2CommandOutput;
      try {
        out = await this.client.send(
          new ListObjectsV2Command({
            Bucket: k.bucket,
            Prefix: k.key || undefined,
            StartAfter: token === undefined ? page.after : undefined,
            ContinuationToken: token,
            // One more than the page asks for: whether another page follows, without a request for it.
            MaxKeys: Math.min(1000, page.limit + 1 - entries.length),
          }),
        );
      } catch (err) {
        throw mapS3Error(err, `s3://${k.bucket}`, false) ?? storageUnavailable(k.where, 1, err);
      }
      for (const o of out.Contents ?? []) {
        if (o.Key === undefined) { continue; }
        entries.push({ path: o.Key, size: o.Size ?? 0, modified: o.LastModified ?? new Date(0) });
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token && entries.length <= page.limit);
    return pageOf(entries, page.limit);
  }
}

function objectKey(loc: Location, prefix = false): S3Key {
  if (loc.kind !== 's3') { throw new AppError('INTERNAL', `S3Storage cannot handle ${loc.kind} locations`); }
  if (!prefix && loc.key === '') {
    throw new AppError('VALIDATION', `s3://${loc.bucket}/ needs a key`, { status: 400 });
  }
  return { bucket: loc.bucket, key: loc.key, where: `s3://${loc.bucket}/${loc.key}` };
}

export function contentTypeOf(name: string): string {
  return /\.(csv|tsv|txt)$/i.test(name) ? 'text/csv' : 'application/octet-stream';
}
