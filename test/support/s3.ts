import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import S3rver from 's3rver';
import type { Config } from '../../shared/src/config';

export interface TestS3 {
  /** http://host:port of the S3 endpoint. */
  endpoint: string;
  host: string;
  port: number;
  /** Client settings for this endpoint (point `endpoint` elsewhere to go through a proxy). */
  config(endpoint?: string): Config['s3'];
  close(): Promise<void>;
}

/**
 * The S3 endpoint tests run against: S3_ENDPOINT (e.g. MinIO, with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)
 * when set, else an in-process s3rver on a free port over a temp folder.
 */
export async function startS3(): Promise<TestS3> {
  const external = process.env.S3_ENDPOINT;
  if (external) {
    const url = new URL(external);
    const credentials = {
      accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'minioadmin',
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'minioadmin',
    };
    return {
      endpoint: external,
      host: url.hostname,
      port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
      config: (endpoint = external) => ({ endpoint, region: process.env.S3_REGION ?? 'us-east-1', forcePathStyle: true, credentials }),
      close: () => Promise.resolve(),
    };
  }
  const directory = await mkdtemp(path.join(os.tmpdir(), 'decisum-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, directory, silent: true });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    host: '127.0.0.1',
    port,
    config: (url = endpoint) => ({
      endpoint: url,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    }),
    close: async () => {
      server.httpServer?.closeAllConnections();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** A bucket name no other test uses. */
export function uniqueBucket(label: string): string {
  return `t-${label}-${randomBytes(4).toString('hex')}`.toLowerCase().slice(0, 63);
}
