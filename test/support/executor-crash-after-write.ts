/**
 * A test-only executor process: the real one (openServices, startExecutor), whose job store kills the
 * process with SIGKILL right after a job's outcome is written, before the message is acked. The
 * crash tests run it as `executor-crash-after-write` (see processes.ts) to prove a redelivered
 * message of a finished job is acked without running the job again.
 */
import path from 'node:path';
import { JobStore, bootstrap, jobStoreOptions, openServices } from '@decisum/shared';
import { startExecutor } from '../../executor/src/start';

class CrashAfterWrite extends JobStore {
  override async finish(...args: Parameters<JobStore['finish']>): Promise<boolean> {
    const written = await super.finish(...args);
    process.kill(process.pid, 'SIGKILL');
    return written;
  }
}

async function main(): Promise<void> {
  const { config, logger } = bootstrap('executor');
  const services = await openServices(config, logger);
  // Run under ts-node: worker threads load the built worker (processes.ts builds before it spawns this).
  const workerEntry = path.resolve(__dirname, '..', '..', 'executor', 'dist', 'engine', 'worker.js');
  await startExecutor({ ...services, store: new CrashAfterWrite(services.redis, jobStoreOptions(config)) }, config, logger, { workerEntry });
}

void main();
