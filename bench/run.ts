/*
 * `npm run bench [-- --rows N --runs R --only a,b]`: the CSV engine against its baselines
 * (bench/engine.ts). The old S3-against-disk comparison read through Storage.read, which is gone.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';

async function main(): Promise<void> {
  const args = process.argv.slice(2).filter((a) => a !== '--no-storage');
  await Promise.resolve();
  execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'engine.ts'), ...args], {
    stdio: 'inherit',
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
