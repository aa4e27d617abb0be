/*
 * `npm run bench:service`: many small jobs through decisum (its real API and executor processes)
 * and, in the same run, through the BullMQ anchor and the floor (bench/service/floor.ts: DESIGN.md's job
 * path with none of decisum's code), driven by one load generator. Prints for each:
 * submitted/s, finished jobs/s and submit p50/p99 with --clients clients and --jobs jobs of the
 * reference sample, the idle latency from submission to `succeeded` as a client sees it
 * (--idle-jobs jobs one after another), the ratios to BullMQ, and issue 14's targets.
 *
 *   npm run bench:service
 *   npm run bench:service -- --apis 2 --executors 2         clients spread over both APIs
 *   npm run bench:service -- --only decisum --executor-concurrency 8
 *   npm run bench:service -- --profile /tmp/prof             --cpu-prof on every server process
 *
 * Options: --jobs 5000, --clients 50, --apis 1, --executors 1, --executor-concurrency and
 * --executor-prefetch (product defaults), --only decisum|bullmq|floor (or a comma list), --idle-jobs 200, --poll-ms N (idle jobs polled every N ms instead
 * of a `?wait=` long poll), --profile DIR, --json FILE,
 * --node-args "FLAGS" (more node flags for every server process, e.g. "--trace-gc"; kept logs need --profile).
 * --steps [--step-runs 500] measures each step of a job alone instead (bench/service/steps.ts).
 * Uses REDIS_URL / AMQP_URL (default: the local servers) under fresh prefixes, and deletes every
 * key, queue, process and file it made, also when interrupted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { serviceUrls } from '../test/support/services';
import { HttpClient, idleLatency, longPollUntilFinal, medianSteps, percentile, pollUntilFinal, runLoad } from './service/load';
import { cpuMs, listenerPid } from './service/procs';
import { summarizeProfiles } from './service/profile';
import { runSteps } from './service/steps';
import { SAMPLE_FILE, startAnchor, startDecisum, startFloor, type Servers, type System } from './service/systems';

const SYSTEMS = ['decisum', 'bullmq', 'floor'] as const;
type SystemName = (typeof SYSTEMS)[number];

interface Options {
  jobs: number;
  clients: number;
  apis: number;
  executors: number;
  executorConcurrency?: number;
  executorPrefetch?: number;
  /** Run only these systems; absent: all three. */
  only?: SystemName[];
  idleJobs: number;
  /** Poll idle jobs every pollMs; absent: one `GET …?wait=` long poll. */
  pollMs?: number;
  profileDir?: string;
  json?: string;
  nodeArgs?: string[];
  /** Runs of each step for --steps (the step probe instead of the load); absent: the load. */
  steps?: number;
}

function options(argv: string[]): Options {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (flag: string, fallback: number, min: number): number => {
    const raw = value(flag);
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < min) { throw new Error(`${flag} takes a whole number of at least ${min}, not ${raw}`); }
    return n;
  };
  const only = value('--only')?.split(',');
  const unknown = only?.find((s) => !(SYSTEMS as readonly string[]).includes(s));
  if (unknown !== undefined) { throw new Error(`--only takes ${SYSTEMS.join(', ')} or a comma list of them, not ${unknown}`); }
  const profile = value('--profile');
  return {
    jobs: num('--jobs', 5000, 1),
    clients: num('--clients', 50, 1),
    apis: num('--apis', 1, 1),
    executors: num('--executors', 1, 1),
    executorConcurrency: value('--executor-concurrency') === undefined ? undefined : num('--executor-concurrency', 0, 1),
    executorPrefetch: value('--executor-prefetch') === undefined ? undefined : num('--executor-prefetch', 0, 1),
    only: only as SystemName[] | undefined,
    idleJobs: num('--idle-jobs', 200, 1),
    pollMs: value('--poll-ms') === undefined ? undefined : num('--poll-ms', 1, 0),
    profileDir: profile === undefined ? undefined : path.resolve(profile),
    json: value('--json'),
    nodeArgs: value('--node-args')?.split(' ').filter((a) => a !== ''),
    steps: argv.includes('--steps') ? num('--step-runs', 500, 10) : undefined,
  };
}

interface Figures {
  system: string;
  setup: string;
  jobs: number;
  refused: number;
  submittedPerSecond: number;
  finishedPerSecond: number;
  submitP50: number;
  submitP99: number;
  idleP50: number;
  idleP99: number;
  /** The idle jobs' way, step by step: medians of the time since the step before (ms). */
  idleSteps: { step: string; ms: number }[];
  /** Requests the load generator sent to the system, idle and load together (polls included). */
  requests: { GET: number; POST: number };
  /** CPU ms per job of each process during the load, by process (shared servers include others' load). */
  cpuPerJob: Record<string, number>;
}

const IDLE_WARMUP = 20;

const say = (msg: string) => process.stdout.write(`bench:service: ${msg}\n`);

// Whatever was started registers its cleanup here first, so an interrupt or a failure removes it.
const cleanups: (() => Promise<void>)[] = [];
let interrupted = false;

async function cleanUp(): Promise<void> {
  while (cleanups.length) {
    await cleanups.pop()!().catch((err: unknown) => say(`cleanup failed: ${err instanceof Error ? err.message : String(err)}`));
  }
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (interrupted) { return; }
    interrupted = true;
    say(`${signal}: stopping and cleaning up`);
    void cleanUp().finally(() => process.exit(130));
  });
}

/** CPU of our processes and of the shared servers' listeners, read before and after the load. */
function cpuReader(system: System, servers: Servers): () => Record<string, number> {
  const pids: Record<string, number | undefined> = {
    redis: listenerPid(Number(new URL(servers.redisUrl).port || 6379)),
    ...(system.name !== 'BullMQ' ? { rabbitmq: listenerPid(Number(new URL(servers.amqpUrl).port || 5672)) } : {}),
  };
  for (const p of system.processes) { pids[p.name] = p.pid; }
  const read = () => {
    const r: Record<string, number> = {};
    for (const [name, pid] of Object.entries(pids)) {
      const ms = pid === undefined ? undefined : cpuMs(pid);
      if (ms !== undefined) { r[name] = ms; }
    }
    const own = process.cpuUsage();
    r['load generator'] = (own.user + own.system) / 1000;
    return r;
  };
  const before = read();
  return () => {
    const after = read();
    return Object.fromEntries(Object.keys(after).filter((k) => k in before).map((k) => [k, after[k] - before[k]]));
  };
}

async function measure(system: System, servers: Servers, o: Options): Promise<Figures> {
  const body = JSON.stringify({ file: SAMPLE_FILE });
  const client = new HttpClient(o.clients);
  try {
    say(`${system.name} (${system.setup}): idle latency, ${o.idleJobs} jobs one after another`);
    const idle = await idleLatency(client, system.urls, { jobs: o.idleJobs, warmup: IDLE_WARMUP, body, wait: o.pollMs === undefined ? longPollUntilFinal(30) : pollUntilFinal(o.pollMs) });

    say(`${system.name}: ${o.jobs} jobs from ${o.clients} clients`);
    const cpu = cpuReader(system, servers);
    const load = await runLoad(client, system.urls, { jobs: o.jobs, clients: o.clients, body, progress: (l) => say(`${system.name}: ${l}`) });
    const cpuUsed = cpu();
    const problems = await system.verify(load.ids);
    if (problems.length) { throw new Error(`${system.name}: ${problems.length} jobs did not end as they should:\n${problems.slice(0, 10).join('\n')}`); }
    if (load.refused) { say(`${system.name}: ${load.refused} submissions refused and retried; the last: ${load.lastRefusal}`); }

    const figures: Figures = {
      system: system.name,
      setup: system.setup,
      jobs: load.accepted,
      refused: load.refused,
      submittedPerSecond: load.accepted / load.submitSeconds,
      finishedPerSecond: load.accepted / load.totalSeconds,
      submitP50: percentile(load.submitMs, 50),
      submitP99: percentile(load.submitMs, 99),
      idleP50: percentile(idle.totalMs, 50),
      idleP99: percentile(idle.totalMs, 99),
      idleSteps: medianSteps(idle.timelines),
      requests: { ...client.sent },
      cpuPerJob: Object.fromEntries(Object.entries(cpuUsed).map(([k, ms]) => [k, ms / load.accepted])),
    };
    say(`${system.name}: ${figures.finishedPerSecond.toFixed(1)} finished jobs/s; all ${load.accepted} jobs checked`);
    return figures;
  } finally {
    client.close();
  }
}

const fmt = {
  rate: (n: number) => n.toFixed(1),
  ms: (n: number) => `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms`,
  ratio: (n: number) => `${n.toFixed(2)}×`,
};

function table(rows: Figures[]): string {
  const head = '| system | submitted/s | finished jobs/s | submit p50 | submit p99 | idle p50 | idle p99 |';
  const line = (f: Figures) =>
    `| ${f.system} | ${fmt.rate(f.submittedPerSecond)} | ${fmt.rate(f.finishedPerSecond)} | ${fmt.ms(f.submitP50)} | ${fmt.ms(f.submitP99)} | ${fmt.ms(f.idleP50)} | ${fmt.ms(f.idleP99)} |`;
  const out = [head, '|---|---:|---:|---:|---:|---:|---:|', ...rows.map(line)];
  const b = rows.find((r) => r.system === 'BullMQ');
  const ratioRow = (d: Figures, base: Figures) => {
    const r = (k: keyof Figures) => fmt.ratio((d[k] as number) / (base[k] as number));
    return `| ${d.system} ÷ ${base.system} | ${r('submittedPerSecond')} | ${r('finishedPerSecond')} | ${r('submitP50')} | ${r('submitP99')} | ${r('idleP50')} | ${r('idleP99')} |`;
  };
  if (b) { out.push(...rows.filter((d) => d !== b).map((d) => ratioRow(d, b))); }
  return out.join('\n');
}

function targets(rows: Figures[], clients: number): string {
  const d = rows.find((r) => r.system === 'decisum');
  const b = rows.find((r) => r.system === 'BullMQ');
  const f = rows.find((r) => r.system === 'floor');
  if (!d) { return ''; }
  const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const lines = [
    b
      ? `finished jobs/s ≥ 2× BullMQ's: ${fmt.ratio(d.finishedPerSecond / b.finishedPerSecond)} — ${met(d.finishedPerSecond >= 2 * b.finishedPerSecond)}`
      : `finished jobs/s ≥ 2× BullMQ's: not measured (--only decisum)`,
    `submit p99 ≤ 100 ms with ${clients} clients: ${fmt.ms(d.submitP99)} — ${met(d.submitP99 <= 100)}${clients === 50 ? '' : ' (the target is for 50 clients)'}`,
    `idle p50 ≤ 5 ms: ${fmt.ms(d.idleP50)} — ${met(d.idleP50 <= 5)}`,
    `idle p99 ≤ 20 ms: ${fmt.ms(d.idleP99)} — ${met(d.idleP99 <= 20)}`,
  ];
  if (f && b) {
    const reach = f.finishedPerSecond / b.finishedPerSecond;
    lines.push(
      `the floor (the contract's job path with no decisum code) finished ${fmt.ratio(reach)} BullMQ's jobs/s: ` +
        (reach < 2 ? 'the 2× target is beyond any implementation of DESIGN.md on this machine' : 'the 2× target is within reach of the contract'),
    );
  }
  return `targets of issue 14:\n${lines.map((l) => `  ${l}`).join('\n')}`;
}

const STEP_NAMES: Record<string, string> = {
  created: 'recorded (createdAt)',
  answered: 'POST answered',
  started: 'claimed (startedAt)',
  finished: 'result written (finishedAt)',
  seen: 'client saw it',
};

function stepsTable(rows: Figures[]): string {
  return rows
    .map((f) => `  ${f.system}: ${f.idleSteps.map((s) => `${STEP_NAMES[s.step]} ${s.ms < 0 ? '' : '+'}${s.ms.toFixed(1)}`).join(', ')}`)
    .join('\n');
}

function cpuTable(rows: Figures[]): string {
  return rows
    .map((f) => `  ${f.system}: ${Object.entries(f.cpuPerJob).map(([k, ms]) => `${k} ${ms.toFixed(2)}`).join(', ')} (requests: ${f.requests.POST} POST, ${f.requests.GET} GET)`)
    .join('\n');
}

/** The comment at the top of this file, for --help. */
function usage(): string {
  const head = fs.readFileSync(__filename, 'utf8').split('*/')[0];
  return `${head.split('\n').slice(1).map((l) => l.replace(/^ \*\s?/, '')).join('\n').trim()}\n`;
}

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(usage());
    return;
  }
  const o = options(process.argv.slice(2));
  const servers = await serviceUrls();
  if (o.steps !== undefined) {
    process.stdout.write(await runSteps(servers, o.steps));
    return;
  }
  if (o.profileDir) { fs.mkdirSync(o.profileDir, { recursive: true }); }
  const rows: Figures[] = [];
  const register = (c: () => Promise<void>) => cleanups.push(c);
  const run = async (start: () => Promise<System>) => {
    const system = await start();
    try {
      rows.push(await measure(system, servers, o));
    } finally {
      await system.cleanup();
    }
  };
  try {
    const starts: Record<SystemName, () => Promise<System>> = {
      decisum: () => startDecisum(servers, o, register),
      bullmq: () => startAnchor(servers, o, register),
      floor: () => startFloor(servers, o, register),
    };
    for (const name of SYSTEMS.filter((s) => o.only?.includes(s) ?? true)) {
      if (!interrupted) { await run(starts[name]); }
    }
  } finally {
    await cleanUp();
  }

  const size = fs.statSync(path.join(__dirname, '..', 'test', 'fixtures', 'sample.csv')).size;
  process.stdout.write(
    [
      '',
      `${o.jobs} jobs of the reference sample (${size} bytes, 168 rows), ${o.clients} clients; idle: ${o.idleJobs} jobs one after another, ${o.pollMs === undefined ? 'waited for with GET ?wait=' : `polled every ${o.pollMs} ms`}`,
      ...rows.map((f) => `  ${f.system}: ${f.setup}`),
      o.profileDir ? '  profiled run (--cpu-prof): the figures include the profiler\'s cost' : '',
      '',
      table(rows),
      '',
      'idle jobs step by step (median ms since the step before; the record\'s times are whole ms):',
      stepsTable(rows),
      '',
      `CPU ms per job during the load (redis and rabbitmq are shared servers: other users' load counts too):`,
      cpuTable(rows),
      '',
      targets(rows, o.clients),
      '',
    ].join('\n'),
  );
  if (o.json) { fs.writeFileSync(o.json, `${JSON.stringify({ options: o, at: new Date().toISOString(), rows }, null, 2)}\n`); }
  if (o.profileDir) {
    const perSystem = o.jobs + o.idleJobs + IDLE_WARMUP;
    process.stdout.write(summarizeProfiles(o.profileDir, { 'decisum-': perSystem, 'bullmq-': perSystem, 'floor-': perSystem }));
  }
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    process.stderr.write(`bench:service: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    await cleanUp();
    process.exit(1);
  },
);
