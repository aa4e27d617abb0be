/*
 * The CSV engine benchmark: `npm run bench [-- --rows N --runs R --limit-mb M --only a,b]`.
 * Generates its data under bench/data/ when missing (3·10⁶ rows × 100 columns of integers and
 * of 2-decimal numbers, and the reference sample's double-encoded shape), then runs each method
 * in its own child process (bench/child.js, plain JS) and prints MB/s, the ratio to decisum and
 * peak RSS. csv-parse and papaparse are slow, so they read only the first --limit-mb MB
 * (default 300) of each file; their MB/s is over what they read.
 * Needs the compiled engine: run `npm run build` first (npm run bench does).
 */
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';
import type { CsvKind } from '../shared/src/csvgen';
import { dataFile } from './data';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const rows = Number(arg('rows', '3000000'));
const runs = Number(arg('runs', '1'));
const limitMB = Number(arg('limit-mb', '300'));
const only = arg('only', '');
const CHILD = path.join(__dirname, 'child.js');

interface Measure {
  ms: number;
  rssMB: number;
  bytes: number;
  sums: string[];
}

function measure(method: string, file: string, step: number, offset: number): Measure {
  const limit = method === 'csv-parse' || method === 'papaparse' ? limitMB * 1e6 : 0;
  const results: Measure[] = [];
  for (let r = 0; r < runs; r++) {
    const out = execFileSync(process.execPath, [CHILD, method, file, String(step), String(offset), String(limit)], {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    results.push(JSON.parse(out.trim().split('\n').pop() as string) as Measure);
  }
  results.sort((a, b) => a.ms - b.ms);
  return results[Math.floor(results.length / 2)];
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padEnd(n) : s.padStart(n);
}

async function main(): Promise<void> {
  const files: { label: string; kind: CsvKind; methods: string[] }[] = [
    { label: 'decimal', kind: 'decimal', methods: ['newline', 'decisum-1t', 'decisum-2t', 'duckdb', 'papaparse', 'csv-parse'] },
    { label: 'int', kind: 'int', methods: ['newline', 'decisum-1t', 'decisum-2t', 'duckdb', 'papaparse', 'csv-parse'] },
    { label: 'sample shape', kind: 'sample', methods: ['newline', 'decisum-1t', 'decisum-2t'] },
  ];
  const lines: string[] = [];
  lines.push(`rows: ${rows}, runs per method: ${runs} (median), node ${process.version}`);
  lines.push('');
  lines.push('| file | method | MB/s | decisum-1t ÷ method | peak RSS | sums agree |');
  lines.push('|---|---|---:|---:|---:|---|');
  for (const f of files) {
    const file = await dataFile(f.kind, rows);
    const size = statSync(file).size;
    const measured = new Map<string, Measure>();
    for (const m of f.methods) {
      if (only && !only.split(',').includes(m)) { continue; }
      const x = measure(m, file, 10, 0);
      measured.set(m, x);
      console.error(`${f.label} ${m}: ${((x.bytes / 1e6) / (x.ms / 1000)).toFixed(0)} MB/s, ${x.rssMB.toFixed(0)} MB`);
    }
    const mbs = (x: Measure) => x.bytes / 1e6 / (x.ms / 1000);
    const base = measured.get('decisum-1t');
    const exact = measured.get('decisum-2t') ?? base;
    for (const [m, x] of measured) {
      let agree = '';
      if (m === 'duckdb' || m === 'decisum-2t') { agree = exact && base ? String(JSON.stringify(x.sums) === JSON.stringify(base.sums)) : ''; }
      lines.push(
        `| ${f.label} (${(size / 1e6).toFixed(0)} MB) | ${m}${x.bytes < size ? ` (first ${(x.bytes / 1e6).toFixed(0)} MB)` : ''} | ${mbs(x).toFixed(0)} | ${
          base ? (mbs(base) / mbs(x)).toFixed(2) : ''
        }× | ${x.rssMB.toFixed(0)} MB | ${agree} |`,
      );
    }
  }
  console.log(lines.map((l) => pad(l, 0, true)).join('\n'));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
