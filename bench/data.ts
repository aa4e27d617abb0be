import { createWriteStream, existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import { generateCsv, type CsvKind } from '../shared/src/csvgen';

/** Where generated benchmark files live (a link to a shared folder on machines that share them). */
export const DATA = path.join(__dirname, 'data');

/**
 * The benchmark file of `kind` at `rows` rows (100 columns; 50 for the sample's shape), generated
 * once under bench/data and reused by every later run.
 */
export async function dataFile(kind: CsvKind, rows: number): Promise<string> {
  const cols = kind === 'sample' ? 50 : 100;
  const file = path.join(DATA, `${kind}-${rows}x${cols}.csv`);
  if (existsSync(file)) { return file; }
  mkdirSync(DATA, { recursive: true });
  const t0 = Date.now();
  const tmp = `${file}.part`;
  const out = createWriteStream(tmp);
  await generateCsv(out, { rows, cols, kind, seed: 1 });
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  renameSync(tmp, file);
  console.error(`generated ${path.relative(process.cwd(), file)} (${(statSync(file).size / 1e6).toFixed(0)} MB) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return file;
}
