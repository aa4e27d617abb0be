// `npm run build:wasm`: compiles the engine's WebAssembly fast path (executor/assembly/rows.ts) into
// executor/dist/rows.wasm. It writes only when the bytes change, and by rename, because a running
// executor (npm start beside npm test) may load the file at any moment.
import asc from 'assemblyscript/asc';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.join(root, 'executor/assembly/rows.ts');
const out = path.join(root, 'executor/dist/rows.wasm');

let wasm;
const diagnostics = asc.createMemoryStream();
const { error } = await asc.main(
  [source, '--outFile', 'rows.wasm', '-O3', '--runtime', 'stub', '--noAssert', '--enable', 'simd'],
  { writeFile: (_name, contents) => void (wasm = Buffer.from(contents)), stderr: diagnostics },
);
if (error || !wasm) {
  console.error(diagnostics.toString());
  console.error(`build:wasm: ${error?.message ?? 'no output'}`);
  process.exit(1);
}
if (existsSync(out) && readFileSync(out).equals(wasm)) { process.exit(0); }
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(`${out}.${process.pid}.tmp`, wasm);
renameSync(`${out}.${process.pid}.tmp`, out);
console.log(`build:wasm: ${path.relative(root, out)} (${wasm.length} bytes)`);
