'use strict';
/*
 * One benchmark method over one file, in its own process so its peak RSS is its own.
 * Plain JS on purpose: loading ts-node/TypeScript would add ~100 MB to every figure.
 * Usage: node bench/child.js METHOD FILE STEP OFFSET LIMIT_BYTES
 * Prints one JSON line: { ms, bytes, rssMB, sums }.
 */
const fs = require('node:fs');
const path = require('node:path');

const [method, file, stepArg, offsetArg, limitArg] = process.argv.slice(2);
const step = Number(stepArg);
const offset = Number(offsetArg);
const size = fs.statSync(file).size;
const limit = Math.min(size, Number(limitArg) || size);

function header() {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(1 << 20);
  const n = fs.readSync(fd, buf, 0, buf.length, 0);
  fs.closeSync(fd);
  return buf.toString('utf8', 0, n).split('\n')[0].split(',');
}

/** Columns summed, as field indices (the generated files have no index column). */
function summed(names) {
  const out = [];
  for (let i = offset; i < names.length; i += step) { out.push(i); }
  return out;
}

function newlineCount() {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  let pos = 0;
  let lines = 0;
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, pos);
    if (n === 0) { break; }
    pos += n;
    const view = n === buf.length ? buf : buf.subarray(0, n);
    for (let i = view.indexOf(10); i >= 0; i = view.indexOf(10, i + 1)) { lines++; }
  }
  fs.closeSync(fd);
  return { bytes: pos, sums: [String(lines)] };
}

async function decisum(threads) {
  const { sumFile } = loaded.engine;
  const result = await sumFile(path.resolve(file), { step, offset, threads });
  return { bytes: size, sums: result.columns.map((c) => c.sum), rows: result.rows };
}

async function csvParse() {
  const { parse } = loaded.csvParse;
  const idx = summed(header());
  const sums = idx.map(() => 0);
  let first = true;
  const parser = fs.createReadStream(file, { end: limit - 1, highWaterMark: 1 << 20 }).pipe(parse({ cast: false, relax_column_count: true }));
  for await (const rec of parser) {
    if (first) {
      first = false;
      continue;
    }
    for (let j = 0; j < idx.length; j++) {
      const v = rec[idx[j]];
      if (v !== undefined && v !== '') { sums[j] += Number(v); }
    }
  }
  return { bytes: limit, sums: sums.map(String) };
}

function papa() {
  const Papa = loaded.papaparse;
  const idx = summed(header());
  const sums = idx.map(() => 0);
  let first = true;
  return new Promise((resolve, reject) => {
    Papa.parse(fs.createReadStream(file, { end: limit - 1, highWaterMark: 1 << 20 }), {
      step(row) {
        if (first) {
          first = false;
          return;
        }
        const rec = row.data;
        for (let j = 0; j < idx.length; j++) {
          const v = rec[idx[j]];
          if (v !== undefined && v !== '') { sums[j] += Number(v); }
        }
      },
      complete: () => resolve({ bytes: limit, sums: sums.map(String) }),
      error: reject,
    });
  });
}

async function duckdb() {
  const { DuckDBInstance } = loaded.duckdb;
  const names = header();
  const idx = summed(names);
  const decimal = path.basename(file).startsWith('decimal');
  const type = decimal ? 'DECIMAL(18,2)' : 'BIGINT';
  const types = idx.map((i) => `'${names[i]}': '${type}'`).join(', ');
  const db = await DuckDBInstance.create(':memory:');
  const con = await db.connect();
  const select = idx.map((i) => `sum("${names[i]}")::VARCHAR`).join(', ');
  const reader = await con.runAndReadAll(`SELECT ${select} FROM read_csv('${file}', header = true, types = {${types}})`);
  return { bytes: size, sums: reader.getRows()[0].map(String) };
}

const methods = {
  newline: newlineCount,
  'decisum-1t': () => decisum(1),
  'decisum-2t': () => decisum(2),
  'csv-parse': csvParse,
  papaparse: papa,
  duckdb,
};

/** Libraries load before the clock starts: the figures are about reading CSV. */
const loaded = {};
if (method.startsWith('decisum')) { loaded.engine = require(path.join(__dirname, '../executor/dist/engine/index.js')); }
if (method === 'csv-parse') { loaded.csvParse = require('csv-parse'); }
if (method === 'papaparse') { loaded.papaparse = require('papaparse'); }
if (method === 'duckdb') { loaded.duckdb = require('@duckdb/node-api'); }

(async () => {
  const run = methods[method];
  if (!run) { throw new Error(`unknown method ${method}`); }
  const t0 = process.hrtime.bigint();
  const out = await run();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const rssMB = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`${JSON.stringify({ ms, rssMB, ...out })}\n`);
})().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
