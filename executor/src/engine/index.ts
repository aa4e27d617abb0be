import type { JobResult } from '@decisum/shared';
import { Engine } from './core';
import { engineConfig, toAppError, type EngineOptions } from './options';

export { sumFile, type SumFileOptions } from './parallel';
export { DEFAULT_MAX_RECORD_BYTES } from './options';

export type { EngineOptions } from './options';

export interface Summer {
  /** Feed the next bytes; the chunk is copied, so the caller may reuse it. */
  push(chunk: Buffer): void;
  /** End of input: the exact sums. */
  finish(): JobResult;
  /** Data records summed so far (for progress). */
  readonly rows: number;
}

export function createSummer(options: EngineOptions): Summer {
  const engine = new Engine(engineConfig(options));
  let result: JobResult | undefined;
  return {
    push(chunk: Buffer): void {
      if (result) throw new Error('push() after finish()');
      try {
        engine.push(chunk);
      } catch (err) {
        throw toAppError(err);
      }
    },
    finish(): JobResult {
      if (result) return result;
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
