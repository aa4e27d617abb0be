/*
 * Engine micro-benchmark: no disk in the loop. Generates one in-memory CSV (or reads --file
 * once), then pushes it through the engine in 1 MiB chunks and prints MB/s per run.
 *
 *   node -r ts-node/register/transpile-only bench/engine-micro.ts --kind decimal --mb 100 --runs 5
 *   … --impl base=/tmp/base/engine.ts,new=executor/src/engine/engine.ts   (A/B, interleaved A B A B)
 *
 * Without --impl it runs createSummer from executor/src/engine. An --impl path names an engine
 * module (exporting Engine) and is driven the way createSummer drives it. On a noisy machine
 * compare the ratio between interleaved implementations, not absolute figures; --save writes
 * the data to a file so instruction counts (valgrind --tool=callgrind) can reuse it with --file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

type Kind = 'int' | 'decimal' | 'sample';
const file = arg('file', '');
// With --file, the label comes from the file's name when it names a kind.
const kind = arg('kind', (['int', 'decimal', 'sample'] as const).find((k) => path.basename(file).startsWith(k)) ?? 'decimal') as Kind;
const mb = Number(arg('mb', '100'));
const runs = Number(arg('runs', '5'));
const chunkBytes = Number(arg('chunk', String(1 << 20)));
const implArg = arg('impl', '');
const save = arg('save', '');

interface Summer {
  push(chunk: Buffer): void;
  finish(): { rows: number; columns: { sum: string }[] };
}
type Make = () => Summer;

function loadImpls(): { name: string; make: Make }[] {
  if (!implArg) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { createSummer } = require(path.join(__dirname, '../executor/src/engine')) as { createSummer: (o: object) => Summer };
    return [{ name: 'createSummer', make: () => createSummer({ step: 10, offset: 0 }) }];
  }
  return implArg.split(',').map((spec) => {
    const [name, p] = spec.includes('=') ? spec.split('=') : [spec, spec];
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const core = require(path.resolve(p)) as {
      Engine: new (cfg: object) => { push(c: Buffer): void; end(): void; rows: number; columns(): { sum: string }[] };
    };
    return {
      name,
      make: () => {
        const e = new core.Engine({ step: 10, offset: 0, header: true, maxRecordBytes: 64 << 20, maxHeaderBytes: 1 << 20, maxColumns: 100_000 });
        return {
          push: (c: Buffer) => e.push(c),
          finish: () => {
            e.end();
            return { rows: e.rows, columns: e.columns() };
          },
        };
      },
    };
  });
}

async function data(): Promise<Buffer> {
  if (file) { return readFileSync(file); }
  const perRow = kind === 'decimal' ? 840 : kind === 'int' ? 440 : 1150;
  const rows = Math.max(1, Math.round((mb * 1e6) / perRow));
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      parts.push(chunk);
      cb();
    },
  });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { generateCsv } = require('../shared/src/csvgen') as typeof import('../shared/src/csvgen');
  await generateCsv(sink, { rows, cols: kind === 'sample' ? 50 : 100, kind, seed: 1 });
  return Buffer.concat(parts);
}

async function main(): Promise<void> {
  const buf = await data();
  if (save) { writeFileSync(save, buf); }
  const impls = loadImpls();
  const speeds = new Map<string, number[]>();
  const answers = new Map<string, string>();
  for (let r = 0; r < runs; r++) {
    for (const impl of impls) {
      const t0 = process.hrtime.bigint();
      const s = impl.make();
      for (let i = 0; i < buf.length; i += chunkBytes) { s.push(buf.subarray(i, i + chunkBytes)); }
      const res = s.finish();
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const speed = buf.length / 1e6 / (ms / 1000);
      (speeds.get(impl.name) ?? speeds.set(impl.name, []).get(impl.name)!).push(speed);
      answers.set(impl.name, `${res.rows} ${res.columns.map((c) => c.sum).join(' ')}`);
      console.log(`run ${r} ${impl.name}: ${speed.toFixed(0)} MB/s`);
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const first = impls[0].name;
  for (const impl of runs > 0 ? impls : []) {
    const xs = speeds.get(impl.name)!;
    const ratios = xs.map((x, i) => x / speeds.get(first)![i]);
    console.log(
      `${impl.name}: ${kind} ${(buf.length / 1e6).toFixed(0)} MB, median ${xs.length ? med(xs).toFixed(0) : '-'} MB/s, best ${xs.length ? Math.max(...xs).toFixed(0) : '-'}` +
        (impl.name === first ? '' : `, ratio to ${first} (median of pairs) ${med(ratios).toFixed(3)}`) +
        (answers.get(impl.name) === answers.get(first) ? '' : '  SUMS DIFFER'),
    );
  }
  if (runs > 0) { console.log(`answer ${answers.get(first)!.slice(0, 120) }`); }
  console.log(`load ${loadavg().map((x: number) => x.toFixed(1)).join(' ')}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
