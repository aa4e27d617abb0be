import { backoffDelay, classifyS3Error, throttleDelay, THROTTLE_BACKOFF_MS, type ReadPolicy } from '../../../src/storage';

/** An error shaped as the S3 client throws it for an HTTP answer. */
function answer(status: number, code: string, extra: { message?: string; headers?: Record<string, string> } = {}) {
  return Object.assign(new Error(extra.message ?? code), {
    name: code,
    Code: code,
    $metadata: { httpStatusCode: status },
    $response: { headers: extra.headers ?? {} },
  });
}

const where = 's3://b/k.csv';

test.each([
  ['a reset connection', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
  ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:9000'), { code: 'ECONNREFUSED' })],
  ['a header timeout', Object.assign(new Error('request timed out'), { name: 'TimeoutError', code: 'ETIMEDOUT' })],
  ['InternalError (500)', answer(500, 'InternalError')],
  ['a 502 from a balancer', answer(502, 'BadGateway')],
  ['RequestTimeout (400)', answer(400, 'RequestTimeout')],
  ['RequestTimeTooSkewed (403)', answer(403, 'RequestTimeTooSkewed')],
])('%s is retried, not throttled', (_, err) => {
  expect(classifyS3Error(err, where)).toEqual({ kind: 'transient', throttled: false });
});

test.each([
  ['SlowDown (503)', answer(503, 'SlowDown'), undefined],
  ['a bare 503', answer(503, 'ServiceUnavailable'), undefined],
  ['429 with Retry-After', answer(429, 'TooManyRequests', { headers: { 'retry-after': '3' } }), 3000],
])('%s is retried as throttling', (_, err, retryAfterMs) => {
  expect(classifyS3Error(err, where)).toEqual({ kind: 'transient', throttled: true, retryAfterMs });
});

test.each([
  ['no credentials in the chain', Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }), 'S3_CREDENTIALS_MISSING', 403],
  ['InvalidAccessKeyId', answer(403, 'InvalidAccessKeyId'), 'S3_CREDENTIALS_INVALID', 403],
  ['SignatureDoesNotMatch', answer(403, 'SignatureDoesNotMatch'), 'S3_CREDENTIALS_INVALID', 403],
  ['ExpiredToken', answer(400, 'ExpiredToken'), 'S3_CREDENTIALS_INVALID', 403],
  ['AccessDenied', answer(403, 'AccessDenied'), 'FILE_ACCESS_DENIED', 403],
  ['a HEAD answered 403', answer(403, 'Forbidden'), 'FILE_ACCESS_DENIED', 403],
  ['NoSuchBucket', answer(404, 'NoSuchBucket'), 'BUCKET_NOT_FOUND', 404],
  ['NoSuchKey', answer(404, 'NoSuchKey'), 'FILE_NOT_FOUND', 404],
  ['a HEAD answered 404', answer(404, 'NotFound'), 'FILE_NOT_FOUND', 404],
  ['PermanentRedirect', answer(301, 'PermanentRedirect', { headers: { 'x-amz-bucket-region': 'ap-south-1' } }), 'S3_WRONG_REGION', 400],
  [
    'a signature for the wrong region',
    answer(400, 'AuthorizationHeaderMalformed', { message: "the region 'us-east-1' is wrong; expecting 'eu-west-1'" }),
    'S3_WRONG_REGION',
    400,
  ],
  ['PreconditionFailed (If-Match)', answer(412, 'PreconditionFailed'), 'FILE_CHANGED', 409],
  ['MethodNotAllowed', answer(405, 'MethodNotAllowed'), 'VALIDATION', 400],
])('%s fails at once with its own code', (_, err, code, status) => {
  const fault = classifyS3Error(err, where);
  expect(fault).toMatchObject({ kind: 'permanent', error: { code, status, permanent: true } });
});

test('a wrong region names the region to set, from the header or the message', () => {
  const redirect = classifyS3Error(answer(301, 'PermanentRedirect', { headers: { 'x-amz-bucket-region': 'ap-south-1' } }), where);
  expect(redirect).toMatchObject({ error: { message: 's3://b/k.csv: the bucket is in ap-south-1; set S3_REGION to it' } });
  const malformed = classifyS3Error(answer(400, 'AuthorizationHeaderMalformed', { message: "the region 'us-east-1' is wrong; expecting 'eu-west-1'" }), where);
  expect(malformed).toMatchObject({ error: { message: 's3://b/k.csv: the bucket is in eu-west-1; set S3_REGION to it' } });
  // A malformed header for any other reason is not about regions.
  expect(classifyS3Error(answer(400, 'AuthorizationHeaderMalformed', { message: 'missing Credential' }), where)).toMatchObject({ error: { code: 'VALIDATION' } });
});

test('a range S3 cannot serve means a shorter object once bytes were read', () => {
  expect(classifyS3Error(answer(416, 'InvalidRange'), where, true)).toMatchObject({ error: { code: 'FILE_CHANGED' } });
  expect(classifyS3Error(answer(416, 'InvalidRange'), where, false)).toMatchObject({ error: { code: 'VALIDATION' } });
});

describe('backoff', () => {
  const policy: ReadPolicy = { retries: 8, idleTimeoutMs: 1000, backoffMs: 200 };

  test('full jitter under a ceiling that doubles per attempt', () => {
    expect(backoffDelay(1, policy, () => 0.999)).toBe(199);
    expect(backoffDelay(3, policy, () => 0.5)).toBe(400);
    expect(backoffDelay(20, policy, () => 0.999)).toBe(29_970);
  });

  test('a throttled request waits at least half a ceiling that starts at THROTTLE_BACKOFF_MS, or what Retry-After asks', () => {
    expect(throttleDelay(1, policy, 0, () => 0)).toBe(THROTTLE_BACKOFF_MS / 2);
    expect(throttleDelay(2, policy, 0, () => 0)).toBe(THROTTLE_BACKOFF_MS);
    expect(throttleDelay(1, policy, 5000, () => 0.999)).toBe(5000);
  });
});
