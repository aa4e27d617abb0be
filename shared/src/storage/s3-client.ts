import { S3Client } from '@aws-sdk/client-s3';
import { loadConfig, NODE_REGION_CONFIG_FILE_OPTIONS, NODE_REGION_CONFIG_OPTIONS } from '@smithy/core/config';
import type { Config } from '../config';

export interface S3ClientOptions {
  /** TCP connect deadline. */
  connectionTimeoutMs?: number;
  /** Deadline for response headers (the body has its own idle timeout in S3Object). */
  requestTimeoutMs?: number;
  /** A socket silent this long is destroyed, body included: the last resort against a hang. */
  socketTimeoutMs?: number;
  /** SDK attempts per request; 1 for a client used only for resumable reads, which retry by themselves. */
  maxAttempts?: number;
  /** Connections kept per host; a parallel read opens S3_READ_CONCURRENCY of them per job. */
  maxSockets?: number;
}

/** The region when neither S3_REGION nor AWS_REGION is set: the SDK's chain (the shared config file), then us-east-1. */
const sdkRegion = (): Promise<string> => loadConfig(NODE_REGION_CONFIG_OPTIONS, NODE_REGION_CONFIG_FILE_OPTIONS)().catch(() => 'us-east-1');

/**
 * An S3 client for AWS or MinIO/s3rver. It follows region redirects, so a bucket in another region
 * is read there. Checksums only when required: MinIO-likes otherwise store streamed uploads with
 * their aws-chunked framing.
 */
export function createS3Client(s3: Config['s3'], options: S3ClientOptions = {}): S3Client {
  const agent = { keepAlive: true, maxSockets: options.maxSockets ?? 50 };
  return new S3Client({
    region: s3.region ?? sdkRegion,
    endpoint: s3.endpoint,
    forcePathStyle: s3.forcePathStyle,
    credentials: s3.credentials,
    followRegionRedirects: true,
    maxAttempts: options.maxAttempts ?? 3,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      connectionTimeout: options.connectionTimeoutMs ?? 5_000,
      requestTimeout: options.requestTimeoutMs ?? 60_000,
      throwOnRequestTimeout: true,
      socketTimeout: options.socketTimeoutMs ?? 120_000,
      httpAgent: agent,
      httpsAgent: agent,
    },
  });
}
