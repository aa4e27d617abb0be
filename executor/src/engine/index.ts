import type { JobResult } from '@decisum/shared';
import { Engine, type EngineConfig } from './engine';
import { engineConfig, toAppError, type EngineOptions } from './options';

export { sumFile, type SumFileOptions } from './parallel';
export { DEFAULT_MAX_RECORD_BYTES } from './options';
export { loadFastPath } from './simd';

export type { EngineOptions } from './options';

export interface Summer {
  /** Feed the next bytes; the chunk is copied, so the caller may reuse it. */
  push(chunk: Buffer): void;
  /** End of input: the exact sums. */
  finish(): JobResult;
  /** Data records summed so far (for progress). */
  readonly rows: number;
}

/** tuning, for tests and benchmarks: the read buffer's first size, and whether to use the WebAssembly fast path. */
export function createSummer(options: EngineOptions, tuning: Pick<EngineConfig, 'bufferBytes' | 'simd'> = {}): Summer {
  const engine = new Engine({ ...engineConfig(options), ...tuning });
  let result: JobResult | undefined;
  return {
    push(chunk: Buffer): void {
      if (result) { throw new Error('push() after finish()'); }
      try {
        engine.push(chunk);
      } catch (err) {
        throw toAppError(err);
      }
    },
    finish(): JobResult {
      if (result) { return result; }
      try {
        engine.end();
      } catch (err) {
        throw toAppError(err);
      }
      result = { rows: engine.rows, columns: engine.columns() };
      return result;
    },
    get rows(): number {
      return engine.rows;
    },
  };
}
