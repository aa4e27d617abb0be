import type { JobOptions, JobResult, Location, Progress, ReadLimits, RetryInfo, Storage } from '@decisum/shared';
import { sumObject } from './engine/parallel';

export interface ComputeDeps {
  storage: Storage;
  /** Worker threads one local file may be split across. */
  threads: number;
  /** Bounds of the read: summed columns and header bytes (the defaults when absent). */
  limits?: ReadLimits;
  signal: AbortSignal;
  onProgress: (p: Progress) => void;
  onRetry: (info: RetryInfo) => void;
  /** The built worker module, for a process that runs the TypeScript sources (tests); see SumOptions. */
  workerEntry?: string;
}

/** Opens the file at its current version and sums it: split across worker threads when local and big, else in order. */
export async function sumLocation(loc: Location, options: JobOptions, deps: ComputeDeps): Promise<JobResult> {
  const { signal, onProgress, onRetry } = deps;
  const object = await deps.storage.open(loc, { signal, onRetry });
  onProgress({ bytesRead: 0, bytesTotal: object.info.size, rows: 0 });
  try {
    return await sumObject(object, { ...options, ...deps.limits, threads: deps.threads, signal, onProgress, onRetry, workerEntry: deps.workerEntry });
  } finally {
    // The result does not wait for the file to close.
    void object.close().catch(() => undefined);
  }
}
