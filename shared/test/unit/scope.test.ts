import { AppError } from '../../src/errors';
import { badKeySegment, parseLocation } from '../../src/location';
import { ANY_BUCKET, checkScope, NO_BUCKETS, parseBucketScope } from '../../src/scope';
import { loadConfig } from '../../src/config';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof AppError ? err.code : 'not an AppError';
  }
};

describe('S3 key rules', () => {
  it.each(['', 'a.csv', 'in/a.csv', 'in/', 'a..b/c.csv', '.hidden/x', '%zz/x'])('accepts %j', (key) => {
    expect(badKeySegment(key)).toBeUndefined();
  });

  it.each(['../x', 'a/../b', 'a//b', '/a', './a', 'a/./b', '%2e%2e/x', 'a/%2E/b', '..', '//'])('refuses %j', (key) => {
    expect(badKeySegment(key)).toBeDefined();
    expect(codeOf(() => parseLocation(`s3://decisum/${key}`))).toBe('INVALID_LOCATION');
  });
});

describe('S3_BUCKETS', () => {
  const scope = parseBucketScope('decisum, shared/team-a/');
  const loc = (bucket: string, key: string) => ({ kind: 's3' as const, bucket, key });

  it('allows a listed bucket, and a listed prefix only inside it', () => {
    expect(codeOf(() => checkScope(scope, loc('decisum', 'any/key.csv')))).toBeUndefined();
    expect(codeOf(() => checkScope(scope, loc('shared', 'team-a/x.csv')))).toBeUndefined();
    expect(codeOf(() => checkScope(scope, loc('shared', 'team-ab/x.csv')))).toBe('LOCATION_NOT_ALLOWED');
    expect(codeOf(() => checkScope(scope, loc('shared', '')))).toBe('LOCATION_NOT_ALLOWED');
    expect(codeOf(() => checkScope(scope, loc('payroll', 'x.csv')))).toBe('LOCATION_NOT_ALLOWED');
  });

  it('allows no bucket when unset, every bucket with *, local paths always', () => {
    expect(loadConfig({}).buckets).toEqual(NO_BUCKETS);
    expect(loadConfig({ S3_BUCKETS: '*' }).buckets).toEqual(ANY_BUCKET);
    expect(codeOf(() => checkScope(NO_BUCKETS, loc('decisum', 'a.csv')))).toBe('LOCATION_NOT_ALLOWED');
    expect(codeOf(() => checkScope(NO_BUCKETS, { kind: 'local', path: 'a.csv' }))).toBeUndefined();
  });

  it.each(['Bad_Bucket', 'decisum/../x', 'decisum//x', ','])('refuses %j naming the variable', (value) => {
    expect(() => loadConfig({ S3_BUCKETS: value })).toThrow(/S3_BUCKETS/);
  });
});
