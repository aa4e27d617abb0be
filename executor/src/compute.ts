import { permanentError, type JobOptions, type JobResult, type Location, type Progress, type RetryInfo, type Storage } from '@decisum/shared';
import { createSummer } from './engine';
import { sumFile } from './engine/parallel';

export interface ComputeDeps {
  storage: Storage;
  /** When given, local files are read by worker threads straight from this absolute path. */
  resolveLocal?: (path: string) => Promise<string>;
  threads: number;
  signal: AbortSignal;
  onProgress: (p: Progress) => void;
  onRetry: (info: RetryInfo) => void;
}

/** Streams a file through the CSV engine: in worker threads for local files, chunk by chunk otherwise. */
export async function sumLocation(loc: Location, options: JobOptions, deps: ComputeDeps): Promise<JobResult> {
  if (loc.kind === 'local' && deps.resolveLocal && deps.threads > 1) {
    const absPath = await deps.resolveLocal(loc.path);
    const before = await deps.storage.stat(loc);
    const result = await sumFile(absPath, { ...options, threads: deps.threads, signal: deps.signal, onProgress: deps.onProgress });
    // Worker threads read by position: a file rewritten meanwhile would mix versions, so refuse it.
    const after = await deps.storage.stat(loc);
    if (after.size !== before.size || after.modified.getTime() !== before.modified.getTime()) {
      throw permanentError('FILE_CHANGED', `${loc.path} changed while it was being read`, { status: 409 });
    }
    return result;
  }
  const handle = await deps.storage.read(loc, { signal: deps.signal, onRetry: deps.onRetry });
  try {
    const summer = createSummer(options);
    const bytesTotal = handle.info.size;
    let bytesRead = 0;
    for await (const chunk of handle.chunks) {
      summer.push(chunk);
      bytesRead += chunk.length;
      deps.onProgress({ bytesRead, bytesTotal, rows: summer.rows });
    }
    return summer.finish();
  } finally {
    handle.close();
  }
}
