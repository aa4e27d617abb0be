import { readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/** Read errors worth trying again in place: the disk or network file system hiccuped. */
const TRANSIENT = new Set(['EIO', 'EAGAIN', 'EINTR', 'EBUSY', 'ETIMEDOUT', 'ESTALE']);
export const READ_ATTEMPTS = 5;

function transient(err: unknown): boolean {
  return TRANSIENT.has((err as NodeJS.ErrnoException | null)?.code ?? '');
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** A positional read that retries transient errors a few times with a short backoff. */
export function readAtSync(fd: number, buf: Buffer, position: number): number {
  for (let attempt = 1; ; attempt++) {
    try {
      return readSync(fd, buf, 0, buf.length, position);
    } catch (err) {
      if (!transient(err) || attempt >= READ_ATTEMPTS) { throw err; }
      Atomics.wait(sleeper, 0, 0, 20 * 2 ** attempt);
    }
  }
}

export async function readAt(fh: FileHandle, buf: Buffer, position: number): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await fh.read(buf, 0, buf.length, position)).bytesRead;
    } catch (err) {
      if (!transient(err) || attempt >= READ_ATTEMPTS) { throw err; }
      await new Promise((resolve) => setTimeout(resolve, 20 * 2 ** attempt));
    }
  }
}
