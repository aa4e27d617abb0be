/** Stable error codes: clients and tests match on these, never on messages. */
export const ERROR_CODES = [
  'VALIDATION',
  'MALFORMED_REQUEST',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'HOST_NOT_ALLOWED',
  'PATH_OUTSIDE_DATA_DIR',
  'PATH_RESERVED',
  'INVALID_LOCATION',
  'LOCATION_NOT_ALLOWED',
  'UPLOAD_TOO_LARGE',
  'INSUFFICIENT_STORAGE',
  'RATE_LIMITED',
  'TOO_MANY_ACTIVE_JOBS',

  'FILE_NOT_FOUND',
  'FILE_ACCESS_DENIED',
  'FILE_CHANGED',
  'FILE_EXISTS',
  'BUCKET_NOT_FOUND',
  'S3_CREDENTIALS_MISSING',
  'S3_CREDENTIALS_INVALID',
  'S3_WRONG_REGION',
  'NOT_FOUND',
  'JOB_NOT_FOUND',
  'JOB_FINISHED',
  'IDEMPOTENCY_KEY_REUSED',
  'CALLBACK_NOT_ALLOWED',
  'NON_NUMERIC',
  'RAGGED_ROW',
  'UNTERMINATED_QUOTE',
  'NOT_TEXT',
  'EMPTY_FILE',
  'LINE_TOO_LONG',
  'NUMBER_OUT_OF_RANGE',
  'HEADER_TOO_LARGE',
  'TOO_MANY_COLUMNS',
  'STORAGE_UNAVAILABLE',
  'BROKER_UNAVAILABLE',
  'STORE_UNAVAILABLE',
  'DELIVERY_LIMIT',
  'POISON_MESSAGE',
  'CANCELLED',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface AppErrorOptions {
  status?: number;
  /** Expected errors are the user's (bad input); unexpected ones are ours and logged loudly. */
  expected?: boolean;
  /** Permanent errors fail a job at once; the rest are retried. */
  permanent?: boolean;
  row?: number;
  column?: string;
  details?: Record<string, unknown>;
  /** Response headers that go with the problem (WWW-Authenticate). */
  headers?: Record<string, string>;
  /** Seconds until trying again may succeed: sent as Retry-After. */
  retryAfter?: number;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly expected: boolean;
  readonly permanent: boolean;
  readonly row?: number;
  readonly column?: string;
  readonly details?: Record<string, unknown>;
  readonly headers?: Record<string, string>;
  readonly retryAfter?: number;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = options.status ?? 500;
    this.expected = options.expected ?? this.status < 500;
    this.permanent = options.permanent ?? this.expected;
    this.row = options.row;
    this.column = options.column;
    this.details = options.details;
    this.headers = options.headers;
    this.retryAfter = options.retryAfter;
  }
}

/** A job error that retrying cannot fix: bad data, a missing file. */
export function permanentError(code: ErrorCode, message: string, options: Omit<AppErrorOptions, 'permanent'> = {}): AppError {
  return new AppError(code, message, { status: 422, expected: true, ...options, permanent: true });
}

export function isPermanent(err: unknown): boolean {
  return err instanceof AppError && err.permanent;
}

/** The shape a failed job and an HTTP problem both carry. */
export interface ErrorBody {
  code: string;
  message: string;
  row?: number;
  column?: string;
}

/**
 * A message fit for a client: absolute paths and network addresses (an errno's `realpath '/srv/…'`,
 * `connect ECONNREFUSED 10.0.0.5:6379`) are cut out; the full message stays in the log. Every
 * message that leaves the service (a problem's detail, a failed job's error) passes here.
 */
export function redact(message: string): string {
  return message
    .replace(/(['"`])(?:[A-Za-z]:)?[\\/][^'"`]*\1/g, '<path>')
    .replace(/\b(E(?:CONN[A-Z]+|NOTFOUND|HOSTUNREACH|NETUNREACH|TIMEDOUT|AI_AGAIN|ADDRINUSE|PIPE)) [^\s,;)]+/g, '$1 <address>')
    // An address with a port is an endpoint decisum connected to; a bare one may be what the client gave.
    .replace(/\b(?:\d{1,3}\.){3}\d{1,3}:\d{1,5}\b/g, '<address>');
}

export function toErrorBody(err: unknown): ErrorBody {
  if (err instanceof AppError) {
    const body: ErrorBody = { code: err.code, message: redact(err.message) };
    if (err.row !== undefined) { body.row = err.row; }
    if (err.column !== undefined) { body.column = err.column; }
    return body;
  }
  return { code: 'INTERNAL', message: redact(err instanceof Error ? err.message : String(err)) };
}
