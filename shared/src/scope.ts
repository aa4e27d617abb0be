import { AppError } from './errors';
import { badKeySegment, formatLocation, type Location } from './location';

/** One S3_BUCKETS entry: a bucket, and the key prefix inside it (`''`, or ending in `/`). */
export interface BucketGrant {
  bucket: string;
  prefix: string;
}

/** The S3 locations jobs and the files API may touch (S3_BUCKETS): every bucket, or the grants listed. */
export type BucketScope = { any: true } | { any: false; grants: readonly BucketGrant[] };

export const NO_BUCKETS: BucketScope = { any: false, grants: [] };
export const ANY_BUCKET: BucketScope = { any: true };

/** `*`, or comma-separated `bucket` / `bucket/prefix`; throws a message naming the bad entry. */
export function parseBucketScope(value: string): BucketScope {
  const items = value.split(',').map((v) => v.trim()).filter((v) => v !== '');
  if (items.length === 1 && items[0] === '*') { return ANY_BUCKET; }
  const grants = items.map((item): BucketGrant => {
    const slash = item.indexOf('/');
    const bucket = slash < 0 ? item : item.slice(0, slash);
    const rest = slash < 0 ? '' : item.slice(slash + 1).replace(/\/+$/, '');
    const prefix = rest === '' ? '' : `${rest}/`;
    if (badKeySegment(prefix) !== undefined) { throw new Error(`"${item}": the prefix may not have empty, . or .. segments`); }
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) { throw new Error(`"${item}": "${bucket}" is not a valid bucket name`); }
    return { bucket, prefix };
  });
  if (grants.length === 0) { throw new Error('must list at least one bucket, or be *'); }
  return { any: false, grants };
}

export function describeScope(scope: BucketScope): string {
  if (scope.any) { return 'every bucket'; }
  if (scope.grants.length === 0) { return 'no bucket (S3_BUCKETS is unset)'; }
  return scope.grants.map((g) => `s3://${g.bucket}/${g.prefix}`).join(', ');
}

/** LOCATION_NOT_ALLOWED (403) unless loc is local or inside a grant; a listing must lie inside one too. */
export function checkScope(scope: BucketScope, loc: Location): void {
  if (loc.kind !== 's3' || scope.any) { return; }
  if (scope.grants.some((g) => g.bucket === loc.bucket && loc.key.startsWith(g.prefix))) { return; }
  throw new AppError('LOCATION_NOT_ALLOWED', `${formatLocation(loc)} is outside the storage decisum may use (allowed: ${describeScope(scope)})`, {
    status: 403,
  });
}
