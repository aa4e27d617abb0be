import path from 'node:path';
import { buildOnce } from './processes';

/**
 * The engine's worker module as built JavaScript: tests run the TypeScript sources, and a worker
 * thread loads plain modules, so tests hand the runner the built one (after building it if stale).
 */
export async function builtWorkerEntry(): Promise<string> {
  await buildOnce();
  return path.resolve(__dirname, '..', '..', 'executor', 'dist', 'engine', 'worker.js');
}
