import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { setMaxListeners } from 'node:events';
import type { Readable } from 'node:stream';
import { AppError } from '../errors';
import {
  backoffDelay,
  cancelled,
  fileChanged,
  IdleTimeoutError,
  pauseBeforeRetry,
  type ReadPolicy,
  sleep,
  storageUnavailable,
  throttleDelay,
  throwIfCancelled,
  withIdleTimeout,
} from './backoff';
import { orderedParts } from './parts';
import { classifyS3Error, mapS3Error } from './s3-errors';
import type { ByteRange, ObjectInfo, ObjectReader, ReadOptions, S3Version } from './types';

export interface S3Key {
  bucket: string;
  key: string;
  /** s3://bucket/key, for messages. */
  where: string;
}

export interface S3ReadSettings {
  policy: ReadPolicy;
  /** Bytes per ranged GET when a range is read in parts. */
  partBytes: number;
  /** Parts in flight at once; 1 reads a range as one stream. */
  concurrency: number;
}

/**
 * An object's size, ETag and modification time from a GET of its first two bytes. Not a HEAD: a
 * HEAD's error has no body, so it cannot tell NoSuchBucket from NoSuchKey, or AccessDenied from a bad
 * key. Two bytes, not one: s3rver takes `bytes=0-0` for the whole object.
 */
export async function probeObject(client: S3Client, k: S3Key, signal?: AbortSignal, requestTimeout?: number): Promise<ObjectInfo> {
  let out;
  try {
    out = await client.send(new GetObjectCommand({ Bucket: k.bucket, Key: k.key, Range: 'bytes=0-1' }), { abortSignal: signal, requestTimeout });
  } catch (err) {
    // An empty object has no byte 0 to give.
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 416) { throw err; }
    const head = await client.send(new HeadObjectCommand({ Bucket: k.bucket, Key: k.key }), { abortSignal: signal, requestTimeout });
    return { size: head.ContentLength ?? 0, modified: head.LastModified ?? new Date(0), etag: head.ETag };
  }
  const body = out.Body as Readable | undefined;
  const total = /\/(\d+)$/.exec(out.ContentRange ?? '')?.[1];
  const size = total === undefined ? (out.ContentLength ?? 0) : Number(total);
  // Drain the bytes so the connection goes back to the pool; a server that sent more is cut off.
  if (body && (out.ContentLength ?? 0) <= 2) {
    await withIdleTimeout(body.toArray(), requestTimeout ?? 30_000).catch((err: unknown) => {
      body.destroy();
      throw err;
    });
  } else {
    body?.destroy();
  }
  return { size, modified: out.LastModified ?? new Date(0), etag: out.ETag };
}

/**
 * An S3 object opened at the ETag first seen. Every GET carries If-Match and its answer's ETag and
 * Content-Range are compared too, since some S3 implementations ignore If-Match. A range longer than
 * one part is read as parts on up to `concurrency` connections (orderedParts); each part resumes at
 * the byte it reached after a cut, and a throttling answer holds back every part's next request.
 */
export class S3Object implements ObjectReader {
  readonly info: ObjectInfo;
  readonly version: S3Version;
  readonly policy: ReadPolicy;
  /** Aborted by close() or the caller's signal: stops every request and body in flight. */
  private readonly stop = new AbortController();
  private readonly unlink: () => void;
  private throttledUntil = 0;

  private constructor(
    private readonly client: S3Client,
    private readonly k: S3Key,
    info: ObjectInfo & { etag: string },
    private readonly settings: S3ReadSettings,
    private readonly options: ReadOptions,
  ) {
    this.info = info;
    this.policy = settings.policy;
    this.version = { kind: 's3', bucket: k.bucket, key: k.key, etag: info.etag, size: info.size };
    // Every request of every part listens to it.
    setMaxListeners(0, this.stop.signal);
    const signal = options.signal;
    const onAbort = () => this.stop.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    this.unlink = () => signal?.removeEventListener('abort', onAbort);
  }

  static async open(client: S3Client, k: S3Key, settings: S3ReadSettings, options: ReadOptions = {}): Promise<S3Object> {
    const { policy } = settings;
    for (let attempt = 1; ; attempt++) {
      throwIfCancelled(options.signal);
      try {
        const info = await probeObject(client, k, options.signal, policy.idleTimeoutMs);
        if (info.etag === undefined) { throw new AppError('INTERNAL', `${k.where}: S3 sent no ETag`); }
        return new S3Object(client, k, { ...info, etag: info.etag }, settings, options);
      } catch (err) {
        throwIfCancelled(options.signal);
        const fault = classifyS3Error(err, k.where);
        if (fault.kind === 'permanent') { throw fault.error; }
        const delay = fault.throttled ? throttleDelay(attempt, policy, fault.retryAfterMs) : backoffDelay(attempt, policy);
        await pauseBeforeRetry(k.where, attempt, 0, err, policy, options, delay);
      }
    }
  }

  chunks(range: ByteRange = {}): AsyncIterable<Buffer> {
    const start = range.start ?? 0;
    const end = Math.min(range.end ?? this.info.size, this.info.size);
    const { partBytes, concurrency } = this.settings;
    if (concurrency <= 1 || end - start <= partBytes) { return this.range(start, end, this.stop.signal); }
    return orderedParts(start, end, (s, e, signal) => this.range(s, e, signal), { partBytes, concurrency, signal: this.stop.signal });
  }

  async readAt(buf: Buffer, position: number): Promise<number> {
    let n = 0;
    for await (const chunk of this.range(position, Math.min(position + buf.length, this.info.size), this.stop.signal)) {
      chunk.copy(buf, n);
      n += chunk.length;
    }
    return n;
  }

  async verify(): Promise<void> {
    const now = await probeObject(this.client, this.k, this.stop.signal, this.policy.idleTimeoutMs).catch((err: unknown) => {
      throw mapS3Error(err, this.k.where, true) ?? storageUnavailable(this.k.where, 1, err);
    });
    if (now.etag !== this.version.etag || now.size !== this.version.size) {
      throw fileChanged(this.k.where, `ETag ${this.version.etag} → ${now.etag ?? 'none'}`);
    }
  }

  close(): Promise<void> {
    this.stop.abort();
    this.unlink();
    return Promise.resolve();
  }

  /** Bytes [start, end) from one ranged GET at a time, resumed at the byte reached after each fault. */
  private async *range(start: number, end: number, signal: AbortSignal): AsyncGenerator<Buffer> {
    const { policy } = this;
    let offset = start;
    let attempt = 0;
    while (offset < end) {
      let body: Readable | undefined;
      let watchdog: NodeJS.Timeout | undefined;
      const destroy = () => body?.destroy();
      signal.addEventListener('abort', destroy, { once: true });
      try {
        const stream = await this.get(offset, end, signal);
        body = stream;
        // One timer per response, pushed back by every chunk: cheaper than a race per chunk.
        watchdog = setTimeout(() => stream.destroy(new IdleTimeoutError(policy.idleTimeoutMs)), policy.idleTimeoutMs);
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          watchdog.refresh();
          if (offset + chunk.length > end) { throw fileChanged(this.k.where, `S3 sent more than bytes ${start}-${end - 1}`); }
          offset += chunk.length;
          attempt = 0;
          yield chunk;
        }
        if (offset < end) { throw new Error(`the response ended at byte ${offset} of ${end}`); }
      } catch (err) {
        if (signal.aborted) { throw cancelled(signal); }
        const fault = classifyS3Error(err, this.k.where, true);
        if (fault.kind === 'permanent') { throw fault.error; }
        attempt++;
        const delay = fault.throttled ? throttleDelay(attempt, policy, fault.retryAfterMs) : backoffDelay(attempt, policy);
        // Every part waits out a throttling answer, not only the one that got it.
        if (fault.throttled) { this.throttledUntil = Math.max(this.throttledUntil, Date.now() + delay); }
        body?.destroy();
        await pauseBeforeRetry(this.k.where, attempt, offset, err, policy, { ...this.options, signal }, delay);
      } finally {
        clearTimeout(watchdog);
        signal.removeEventListener('abort', destroy);
        body?.destroy();
      }
    }
  }

  /** A GET of bytes [offset, end) that must be the version opened. */
  private async get(offset: number, end: number, signal: AbortSignal): Promise<Readable> {
    const wait = this.throttledUntil - Date.now();
    if (wait > 0) { await sleep(wait, signal); }
    const { etag, size } = this.version;
    const out = await this.client.send(
      new GetObjectCommand({ Bucket: this.k.bucket, Key: this.k.key, Range: `bytes=${offset}-${end - 1}`, IfMatch: etag }),
      { abortSignal: signal, requestTimeout: this.policy.idleTimeoutMs },
    );
    const body = out.Body as Readable;
    const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(out.ContentRange ?? '');
    const problem =
      out.ETag !== etag
        ? `ETag ${etag} → ${out.ETag ?? 'none'}`
        : !range || Number(range[3]) !== size
          ? `size ${size} → ${out.ContentRange ?? 'unknown'}`
          : Number(range[1]) !== offset
            ? `asked for byte ${offset}, got ${out.ContentRange}`
            : undefined;
    if (problem !== undefined) {
      body.destroy();
      throw fileChanged(this.k.where, problem);
    }
    return body;
  }
}
