/*
 * Summarizes the `.cpuprofile` files `npm run bench:service -- --profile DIR` leaves in DIR: each
 * process's busy time by what it was for (logging, Redis client, AMQP client, validation, HTTP,
 * engine, …) and its top functions by self time. Also a command:
 *
 *   node -r ts-node/register/transpile-only bench/service/profile.ts DIR [JOBS]
 *
 * JOBS (the jobs each process took part in) adds a per-job column.
 */
import fs from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

// Packages of one purpose, named by the package's folder under node_modules.
const PACKAGES: [RegExp, string][] = [
  [/^(pino|sonic-boom|thread-stream|fast-redact|quick-format-unescaped|on-exit-leak-free|atomic-sleep|safe-stable-stringify|pino-std-serializers)$/, 'logging (pino)'],
  [/^(ioredis|@ioredis|redis-parser|redis-errors|denque|cluster-key-slot|standard-as-callback)$/, 'redis client (ioredis)'],
  [/^(amqplib|buffer-more-ints|url-parse|querystringify|requires-port)$/, 'amqp client (amqplib)'],
  [/^zod$/, 'validation (zod)'],
  [/^(prom-client|tdigest|bintrees)$/, 'metrics (prom-client)'],
  [/^(bullmq|msgpackr|cron-parser|semver|node-abort-controller|tslib)$/, 'bullmq'],
  [
    /^(express|router|body-parser|raw-body|iconv-lite|type-is|content-type|finalhandler|send|serve-static|on-finished|qs|cookie|accepts|negotiator|mime-types|mime-db|media-typer|path-to-regexp|proxy-addr|forwarded|ipaddr\.js|etag|fresh|vary|depd|parseurl|encodeurl|escape-html|statuses|http-errors|content-disposition|range-parser|debug|ms|unpipe|bytes|side-channel.*|call-bound|get-intrinsic|es-.*|function-bind|has-symbols|gopd|dunder-proto|math-intrinsics|object-inspect|hasown|call-bind-apply-helpers|once|wrappy|ee-first)$/,
    'express (routing, body, response)',
  ],
];

// Our own code, by path inside the repository.
const OWN: [RegExp, string][] = [
  [/\/executor\/dist\/engine\/|^wasm:/, 'engine'],
  [/\/shared\/dist\/storage\//, 'storage (local)'],
  [/\/shared\/dist\/jobStore\.js/, 'job store'],
  [/\/shared\/dist\/broker\.js/, 'broker'],
  [/\/shared\/dist\//, 'shared (other)'],
  [/\/api\/dist\//, 'api routes and app'],
  [/\/executor\/dist\//, 'executor lifecycle'],
  [/\/bench\/service\/anchor\.ts/, 'anchor code'],
];

// Node's own modules: only when no package or code of ours is on the stack.
const NODE: [RegExp, string][] = [
  [/^node:(_http_|http$|internal\/http)/, 'node http'],
  [/^node:(net$|stream$|internal\/stream_base_commons|internal\/streams\/)/, 'node net and streams'],
  [/^node:(fs$|internal\/fs\/)/, 'node fs'],
  [/^node:(timers$|internal\/timers)/, 'timers'],
  [/^node:(worker_threads|internal\/worker)/, 'worker threads'],
  [/^node:internal\/process\/task_queues/, 'promises and ticks'],
  [/^node:/, 'node (other)'],
];

const SPECIAL: Record<string, string> = {
  '(garbage collector)': 'GC',
  '(program)': 'native, outside JS (program)',
  '(idle)': 'idle',
  '(root)': 'native, outside JS (program)',
};

function packageOf(url: string): string | undefined {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  return m?.[1];
}

function match(rules: [RegExp, string][], s: string): string | undefined {
  return rules.find(([re]) => re.test(s))?.[1];
}

// Native file system calls: the engine's own (open, read, close of the file) are told apart from its summing.
const FS_NATIVES = new Set(['open', 'openFileHandle', 'close', 'read', 'fstat', 'stat', 'lstat', 'realpath', 'readFileUtf8']);

/** What a sample was for: the innermost frame that is a package or code of ours, else Node's module. */
function categorize(stack: CallFrame[]): string {
  const leaf = stack[0];
  if (SPECIAL[leaf.functionName] && leaf.url === '') { return SPECIAL[leaf.functionName]; }
  if (stack.some((f) => f.url.startsWith('node:internal/modules/'))) { return 'start-up (loading modules)'; }
  for (const f of stack) {
    const pkg = packageOf(f.url);
    if (pkg) { return match(PACKAGES, pkg) ?? `package ${pkg}`; }
    const own = match(OWN, f.url);
    if (own === 'engine' && leaf.url === '' && FS_NATIVES.has(leaf.functionName)) { return 'engine: open, read, close the file'; }
    if (own) { return own; }
  }
  for (const f of stack) {
    const node = match(NODE, f.url);
    if (node) { return node; }
  }
  return `native ${leaf.functionName}`;
}

function shortUrl(url: string): string {
  const pkg = /node_modules\/(.*)$/.exec(url);
  if (pkg) { return pkg[1]; }
  const own = /\/((?:api|executor|shared)\/dist\/.*|bench\/.*)$/.exec(url);
  return own ? own[1] : url;
}

export interface ProfileSummary {
  file: string;
  wallMs: number;
  busyMs: number;
  /** Self time by purpose (ms), and how much of it was spent in native calls (syscalls, C++ bindings). */
  byCategory: [string, number, number][];
  /** Function (name, file:line), what it was for, self ms. */
  topFunctions: [string, string, number][];
}

export function summarizeProfile(file: string, top = 20): ProfileSummary {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) { for (const c of n.children ?? []) { parent.set(c, n.id); } }
  const self = new Map<number, number>();
  // timeDeltas[i] is the time before sample i: sample i lasted until sample i+1.
  for (let i = 0; i < p.samples.length; i++) {
    const us = p.timeDeltas[i + 1] ?? 0;
    self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + us);
  }
  const categories = new Map<string, number>();
  const natives = new Map<string, number>();
  const functions = new Map<string, number>();
  // A native function may serve several purposes: the table names the one it spent the most on.
  const functionCategories = new Map<string, Map<string, number>>();
  for (const [id, us] of self) {
    const stack: CallFrame[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) { stack.push(byId.get(at)!.callFrame); }
    const cat = categorize(stack);
    categories.set(cat, (categories.get(cat) ?? 0) + us);
    const f = stack[0];
    if (f.url === '' && !SPECIAL[f.functionName]) { natives.set(cat, (natives.get(cat) ?? 0) + us); }
    if (cat === 'idle') { continue; }
    const name = `${f.functionName || '(anonymous)'} ${f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : '(native)'}`;
    functions.set(name, (functions.get(name) ?? 0) + us);
    const byCat = functionCategories.get(name) ?? new Map<string, number>();
    byCat.set(cat, (byCat.get(cat) ?? 0) + us);
    functionCategories.set(name, byCat);
  }
  const ms = (entries: Map<string, number>) => [...entries].map(([k, us]): [string, number] => [k, us / 1000]).sort((a, b) => b[1] - a[1]);
  const byCategory = ms(categories).map(([cat, t]): [string, number, number] => [cat, t, (natives.get(cat) ?? 0) / 1000]);
  const idle = categories.get('idle') ?? 0;
  const wallMs = (p.endTime - p.startTime) / 1000;
  const topFunctions = ms(functions)
    .slice(0, top)
    .map(([name, t]): [string, string, number] => [name, [...functionCategories.get(name)!].sort((a, b) => b[1] - a[1])[0][0], t]);
  return { file, wallMs, busyMs: wallMs - idle / 1000, byCategory, topFunctions };
}

/** Markdown tables for every profile in dir; jobs (by file name prefix) adds µs per job. */
export function summarizeProfiles(dir: string, jobs?: Record<string, number>): string {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  const out: string[] = [''];
  for (const f of files) {
    const s = summarizeProfile(path.join(dir, f));
    const n = Object.entries(jobs ?? {}).find(([prefix]) => f.startsWith(prefix))?.[1];
    const perJob = (ms: number) => (n ? ` ${((ms * 1000) / n).toFixed(0)} |` : '');
    const pct = (ms: number) => `${((100 * ms) / s.busyMs).toFixed(1)} %`;
    out.push(`### ${f}: ${(s.busyMs / 1000).toFixed(2)} s busy of ${(s.wallMs / 1000).toFixed(2)} s${n ? `, ${n} jobs` : ''}`, '');
    out.push(`| what | ms | of which native calls | share of busy |${n ? ' µs per job |' : ''}`, `|---|---:|---:|---:|${n ? '---:|' : ''}`);
    for (const [cat, ms, native] of s.byCategory) {
      if (cat === 'idle') { continue; }
      out.push(`| ${cat} | ${ms.toFixed(0)} | ${native.toFixed(0)} | ${pct(ms)} |${cat.startsWith('start-up') ? (n ? ' |' : '') : perJob(ms)}`);
    }
    out.push('', `| function (self time) | mostly for | ms | share of busy |`, `|---|---|---:|---:|`);
    for (const [name, cat, ms] of s.topFunctions) { out.push(`| \`${name}\` | ${cat} | ${ms.toFixed(0)} | ${pct(ms)} |`); }
    out.push('');
  }
  return out.join('\n');
}

if (require.main === module) {
  const [dir, jobs] = process.argv.slice(2);
  if (!dir) {
    process.stderr.write('usage: profile.ts DIR [JOBS]\n');
    process.exit(2);
  }
  process.stdout.write(summarizeProfiles(dir, jobs ? { '': Number(jobs) } : undefined));
}
