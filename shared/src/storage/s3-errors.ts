import { AppError } from '../errors';
import { accessDenied, fileChanged, fileNotFound } from './backoff';

/*
 * What an S3 failure means for a read. Permanent ones fail a job at once with their own code (and
 * refuse a submission); only network errors, 5xx, throttling and timeouts are worth another try.
 */

export type S3Fault =
  | { kind: 'permanent'; error: AppError }
  | { kind: 'transient'; throttled: boolean; retryAfterMs?: number };

interface SdkError {
  name?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
  $retryable?: { throttling?: boolean };
}

const THROTTLING = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'ProvisionedThroughputExceededException',
]);
/** 4xx answers that a later try can get past: the server timed our socket out, or our clock drifted (the SDK corrects it). */
const RETRYABLE_4XX = new Set(['RequestTimeout', 'RequestTimeTooSkewed']);
const CREDENTIALS_REFUSED = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'InvalidSecurity',
]);
const ACCESS_DENIED = new Set(['AccessDenied', 'AllAccessDisabled', 'Forbidden', 'AccountProblem']);
const WRONG_REGION = new Set(['PermanentRedirect', 'IllegalLocationConstraintException']);

function codeOf(e: SdkError | undefined): string {
  return e?.Code ?? e?.name ?? '';
}

/** Classifies an error from the S3 client; `resumed` says whether bytes of this object were read already. */
export function classifyS3Error(err: unknown, where: string, resumed = false): S3Fault {
  if (err instanceof AppError) { return { kind: 'permanent', error: err }; }
  const e = err as SdkError | undefined;
  const code = codeOf(e);
  const status = e?.$metadata?.httpStatusCode;
  const permanent = (error: AppError): S3Fault => ({ kind: 'permanent', error });

  if (code === 'CredentialsProviderError') {
    return permanent(
      new AppError('S3_CREDENTIALS_MISSING', `${where}: decisum has no S3 credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give it a role)`, {
        status: 403,
        expected: false,
        permanent: true,
        cause: err,
      }),
    );
  }
  if (THROTTLING.has(code) || status === 429 || status === 503 || e?.$retryable?.throttling === true) {
    return { kind: 'transient', throttled: true, retryAfterMs: retryAfterMs(e) };
  }
  if (status === undefined || status >= 500 || status === 408 || RETRYABLE_4XX.has(code)) {
    // No HTTP answer at all is a network fault: a refused, reset or timed-out connection.
    return { kind: 'transient', throttled: false };
  }
  if (CREDENTIALS_REFUSED.has(code)) {
    return permanent(
      new AppError('S3_CREDENTIALS_INVALID', `${where}: S3 refused decisum's credentials (${code})`, {
        status: 403,
        expected: false,
        permanent: true,
        cause: err,
      }),
    );
  }
  if (code === 'NoSuchBucket') {
    return permanent(new AppError('BUCKET_NOT_FOUND', `${where}: the bucket does not exist`, { status: 404, permanent: true, cause: err }));
  }
  if (code === 'NoSuchKey' || code === 'NotFound' || status === 404) { return permanent(fileNotFound(where, err)); }
  if (ACCESS_DENIED.has(code) || status === 403) { return permanent(accessDenied(where, err)); }
  const region = wrongRegion(e, code, status);
  if (region !== undefined) {
    const hint = region ? `the bucket is in ${region}` : 'the bucket is in another region';
    return permanent(
      new AppError('S3_WRONG_REGION', `${where}: ${hint}; set S3_REGION to it`, { status: 400, expected: false, permanent: true, cause: err }),
    );
  }
  if (code === 'PreconditionFailed' || status === 412) { return permanent(fileChanged(where, 'the ETag no longer matches', err)); }
  if (code === 'InvalidRange' || status === 416) {
    return permanent(
      resumed
        ? fileChanged(where, 'the object is shorter than the bytes already read', err)
        : new AppError('VALIDATION', `${where}: invalid range`, { status: 400, permanent: true, cause: err }),
    );
  }
  return permanent(
    new AppError('VALIDATION', `${where}: S3 refused the request (${code || status})`, { status: 400, permanent: true, cause: err }),
  );
}

/** The AppError for a failure retrying cannot fix, or undefined for a transient one. */
export function mapS3Error(err: unknown, where: string, resumed = false): AppError | undefined {
  const fault = classifyS3Error(err, where, resumed);
  return fault.kind === 'permanent' ? fault.error : undefined;
}

/**
 * The bucket's region ('' when S3 did not say) if the answer means the request went to the wrong
 * region and the client could not follow it; undefined otherwise.
 */
function wrongRegion(e: SdkError | undefined, code: string, status: number | undefined): string | undefined {
  const header = e?.$response?.headers?.['x-amz-bucket-region'];
  const named = /expecting '([a-z0-9-]+)'/.exec(e?.message ?? '')?.[1];
  if (WRONG_REGION.has(code) || status === 301) { return header ?? named ?? ''; }
  if (code === 'AuthorizationHeaderMalformed' && /region/i.test(e?.message ?? '')) { return header ?? named ?? ''; }
  return undefined;
}

function retryAfterMs(e: SdkError | undefined): number | undefined {
  const value = e?.$response?.headers?.['retry-after'];
  if (value === undefined) { return undefined; }
  const seconds = Number(value);
  if (Number.isFinite(seconds)) { return Math.max(0, seconds * 1000); }
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
