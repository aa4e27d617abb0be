import { createHash } from 'node:crypto';

/**
 * A CSV of about `bytes` bytes whose every line is different (a 10-digit row number first), so a
 * duplicated or skipped span of any length changes the hash. Header: id,col1..col20.
 */
export function makeCsv(bytes: number): Buffer {
  const header = `id,${Array.from({ length: 20 }, (_, i) => `col${i + 1}`).join(',')}\n`;
  const line = `0000000000,${Array.from({ length: 20 }, (_, i) => `${i}.${(i * 37) % 100}`).join(',')}\n`;
  const lines = Math.max(1, Math.floor((bytes - header.length) / line.length));
  const buf = Buffer.allocUnsafe(header.length + lines * line.length);
  buf.write(header, 0, 'latin1');
  const body = buf.subarray(header.length);
  body.fill(line, 'latin1');
  for (let i = 0; i < lines; i++) { body.write(String(i).padStart(10, '0'), i * line.length, 'latin1'); }
  return buf;
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Drains a read handle's chunks into a hash, counting bytes; copies nothing. */
export async function digest(chunks: AsyncIterable<Buffer>): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of chunks) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { bytes, sha256: hash.digest('hex') };
}
