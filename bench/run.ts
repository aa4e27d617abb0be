/*
 * `npm run bench [-- --rows N --runs R --only a,b --no-storage]`: the CSV engine against its baselines
 * (bench/engine.ts), then the same file read from S3 (s3rver) against local disk (bench/storage.ts).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { runStorageBench } from './storage';

async function main(): Promise<void> {
  const args = process.argv.slice(2).filter((a) => a !== '--no-storage');
  execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'engine.ts'), ...args], {
    stdio: 'inherit',
  });
  if (!process.argv.includes('--no-storage')) { await runStorageBench(); }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
