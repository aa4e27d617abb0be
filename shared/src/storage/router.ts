import type { Readable } from 'node:stream';
import type { Location } from '../location';
import { checkScope, type BucketScope } from '../scope';
import type { ListPage, ListResult, ObjectInfo, ObjectReader, ReadOptions, Storage, WriteOptions } from './types';

/**
 * One Storage for every Location: local paths to one backend, s3:// to the other. Every call is
 * checked against the bucket scope (S3_BUCKETS) before a request leaves: the API and the executor
 * both reach storage through here, so neither can touch a bucket outside it.
 */
export class StorageRouter implements Storage {
  constructor(private readonly backends: { local: Storage; s3: Storage; scope: BucketScope }) {}

  private pick(loc: Location): Storage {
    checkScope(this.backends.scope, loc);
    return loc.kind === 's3' ? this.backends.s3 : this.backends.local;
  }

  stat(loc: Location): Promise<ObjectInfo> {
    return this.pick(loc).stat(loc);
  }

  open(loc: Location, options?: ReadOptions): Promise<ObjectReader> {
    return this.pick(loc).open(loc, options);
  }

  download(loc: Location, signal?: AbortSignal): Promise<{ info: ObjectInfo; body: Readable }> {
    return this.pick(loc).download(loc, signal);
  }

  write(loc: Location, body: Readable, options?: WriteOptions): Promise<ObjectInfo> {
    return this.pick(loc).write(loc, body, options);
  }

  list(loc: Location, page: ListPage): Promise<ListResult> {
    return this.pick(loc).list(loc, page);
  }
}
