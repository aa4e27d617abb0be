import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config';
import { LocalStorage } from './local';
import { S3Storage } from './s3';
import { createS3Client } from './s3-client';
import { StorageRouter } from './router';

/**
 * The Storage a process uses, with the S3 clients it opened (the caller destroys them on shutdown).
 * Reads get their own client without SDK retries, so only the read policy applies, and with as many
 * connections as parallel reads ask for.
 */
export function createStorage(config: Pick<Config, 'dataDir' | 's3' | 's3Reads' | 'reads' | 'buckets'>): {
  storage: StorageRouter;
  local: LocalStorage;
  s3: S3Storage;
  clients: S3Client[];
} {
  const client = createS3Client(config.s3);
  const readClient = createS3Client(config.s3, { maxAttempts: 1, maxSockets: Infinity });
  const local = new LocalStorage({ dataDir: config.dataDir, reads: config.reads });
  const s3 = new S3Storage({
    client,
    readClient,
    reads: config.reads,
    readPartBytes: config.s3Reads.partBytes,
    readConcurrency: config.s3Reads.concurrency,
  });
  return { storage: new StorageRouter({ local, s3, scope: config.buckets }), local, s3, clients: [client, readClient] };
}
