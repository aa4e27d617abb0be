/*
 * `npm run bench [-- --rows N --runs R --only a,b --no-storage | --s3]`: the CSV engine against its
 * baselines (bench/engine.ts), then parallel S3 reads through a shaped network (bench/s3.ts).
 * --no-storage runs the engine part only, --s3 the S3 part only.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { runS3Bench, s3BenchOptions } from './s3';

async function main(): Promise<void> {
  // On Node 20 the AWS SDK's documented switch keeps its end-of-support notice out of the figures (children inherit it).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const args = process.argv.slice(2).filter((a) => a !== '--no-storage' && a !== '--s3');
  if (!process.argv.includes('--s3')) {
    execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'engine.ts'), ...args], {
      stdio: 'inherit',
    });
  }
  if (!process.argv.includes('--no-storage')) { await runS3Bench(s3BenchOptions()); }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
