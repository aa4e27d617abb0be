import { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config';

export interface S3ClientOptions {
  /** TCP connect deadline. */
  connectionTimeoutMs?: number;
  /** Deadline for response headers (the body has its own idle timeout in S3Storage.read). */
  requestTimeoutMs?: number;
  /** A socket silent this long is destroyed, body included: the last resort against a hang. */
  socketTimeoutMs?: number;
  /** SDK attempts per request; 1 for a client used only for resumable reads, which retry by themselves. */
  maxAttempts?: number;
}

/**
 * An S3 client for AWS or MinIO/s3rver. Checksums only when required: MinIO-likes otherwise store
 * streamed uploads with their aws-chunked framing.
 */
export function createS3Client(s3: Config['s3'], options: S3ClientOptions = {}): S3Client {
  return new S3Client({
    region: s3.region,
    endpoint: s3.endpoint,
    forcePathStyle: s3.forcePathStyle,
    credentials: s3.credentials,
    maxAttempts: options.maxAttempts ?? 3,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      connectionTimeout: options.connectionTimeoutMs ?? 5_000,
      requestTimeout: options.requestTimeoutMs ?? 60_000,
      throwOnRequestTimeout: true,
      socketTimeout: options.socketTimeoutMs ?? 120_000,
    },
  });
}
