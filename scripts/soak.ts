/**
 * Soak: 2 API processes and 3 executors take N jobs from C concurrent clients while an executor is
 * killed with -9 and replaced every few seconds. Every accepted job must finish exactly once with
 * the reference sample's sums. Prints jobs/s and submit latency p50/p99.
 *
 *   npm run soak                      2,000 jobs, 50 clients, a kill every second
 *   npm run soak -- --short           300 jobs, 20 clients, a kill every 0.5 s (CI, under a minute)
 *   npm run soak -- --jobs 5000 --clients 100 --kill-every 5000
 *
 * Uses REDIS_URL / AMQP_URL (default: the local servers) under a fresh DECISUM_PREFIX.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { isFinal } from '@decisum/shared';
import { Cluster, buildOnce } from '../test/support/processes';
import { SAMPLE, SAMPLE_SUMS as SAMPLE_COLUMNS } from '../test/support/sample';
import { serviceUrls } from '../test/support/services';

const SAMPLE_SUMS = SAMPLE_COLUMNS.map((c) => c.sum);

function options() {
  const args = process.argv.slice(2);
  const short = args.includes('--short');
  const num = (flag: string, fallback: number) => {
    const i = args.indexOf(flag);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  return {
    jobs: num('--jobs', short ? 300 : 2000),
    clients: num('--clients', short ? 20 : 50),
    killEveryMs: num('--kill-every', short ? 500 : 1000),
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN;
}

const log = (msg: string) => process.stdout.write(`soak: ${msg}\n`);

async function main(): Promise<number> {
  const opts = options();
  await buildOnce();
  const { redisUrl, amqpUrl } = await serviceUrls();
  const cluster = await Cluster.start({
    redisUrl,
    amqpUrl,
    apis: 2,
    executors: 3,
    env: { EXECUTOR_CONCURRENCY: '4', LOG_LEVEL: 'info', SHUTDOWN_GRACE_MS: '2000' },
  });
  try {
    return await run(cluster, opts);
  } finally {
    await cluster.stop();
  }
}

async function run(cluster: Cluster, opts: ReturnType<typeof options>): Promise<number> {
  cluster.writeFile('sample.csv', fs.readFileSync(SAMPLE));
  log(`${opts.jobs} jobs from ${opts.clients} clients; 2 APIs, 3 executors; kill -9 an executor every ${opts.killEveryMs} ms`);

  const ids: string[] = [];
  const latencies: number[] = [];
  let refused = 0;
  let kills = 0;
  let next = 0;

  const client = async (c: number) => {
    while (next < opts.jobs) {
      next++;
      // A retry after a refusal or a dropped connection carries the same key: it can never make a second job.
      const key = randomUUID();
      for (;;) {
        const started = performance.now();
        const res = await cluster.submit({ file: 'sample.csv' }, { 'Idempotency-Key': key }, cluster.apis[c % 2].url).catch(() => undefined);
        if (res?.status === 202) {
          latencies.push(performance.now() - started);
          ids.push((res.body as { id: string }).id);
          break;
        }
        refused++;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };

  // Killing and replacing executors runs until every job is done, not only while submitting.
  let done = false;
  const killer = (async () => {
    while (!done) {
      await new Promise((r) => setTimeout(r, opts.killEveryMs));
      if (done) { break; }
      const live = cluster.executors.filter((p) => p.alive);
      const victim = live[Math.floor(Math.random() * live.length)];
      await victim.kill();
      kills++;
      await cluster.addExecutor();
    }
  })();

  const t0 = performance.now();
  await Promise.all(Array.from({ length: opts.clients }, (_, c) => client(c)));
  const submitSeconds = (performance.now() - t0) / 1000;

  const deadline = Date.now() + 5 * 60_000;
  let finished = 0;
  let last = -1;
  try {
    while (finished < ids.length) {
      if (Date.now() > deadline) { throw new Error(`only ${finished}/${ids.length} jobs finished in time\n${cluster.logs() }`); }
      const pipeline = cluster.redis.pipeline();
      for (const id of ids) { pipeline.hget(`${cluster.prefix}:job:${id}`, 'status'); }
      const statuses = ((await pipeline.exec()) ?? []).map(([, s]) => s as string | null);
      finished = statuses.filter(isFinal).length;
      if (finished !== last) { log(`${finished}/${ids.length} finished, ${kills} executors killed`); }
      last = finished;
      if (finished < ids.length) { await new Promise((r) => setTimeout(r, 250)); }
    }
  } finally {
    done = true;
    await killer;
  }
  const totalSeconds = (performance.now() - t0) / 1000;

  // Every accepted job: succeeded, the right sums, its result written by one attempt only.
  const problems: string[] = [];
  if (new Set(ids).size !== ids.length || ids.length !== opts.jobs) { problems.push(`${ids.length} ids for ${opts.jobs} jobs (${new Set(ids).size} distinct)`); }
  const writes = new Map<string, number>();
  for (const p of cluster.executors) {
    for (const l of p.logged('job succeeded')) { if (l.written === true) { writes.set(l.jobId!, (writes.get(l.jobId!) ?? 0) + 1); } }
  }
  let retried = 0;
  for (const id of ids) {
    const job = await cluster.store.get(id);
    if (job?.status !== 'succeeded') { problems.push(`${id}: ${job?.status} ${JSON.stringify(job?.error) }`); }
    else if (JSON.stringify(job.result?.columns.map((c) => c.sum)) !== JSON.stringify(SAMPLE_SUMS) || job.result?.rows !== 168) {
      problems.push(`${id}: wrong result ${JSON.stringify(job.result)}`);
    }
    if ((writes.get(id) ?? 0) > 1) { problems.push(`${id}: result written ${writes.get(id) } times`); }
    if ((job?.attempts ?? 0) > 1) { retried++; }
  }
  // A run that ends before any kill has shown nothing about kills: say so rather than pass.
  if (kills === 0) { problems.push(`no executor was killed in ${totalSeconds.toFixed(1)} s: lower --kill-every or raise --jobs`); }
  const active = await cluster.active();
  if (active.active !== 0) { problems.push(`active is ${JSON.stringify(active) } at the end`); }

  latencies.sort((a, b) => a - b);
  const summary = {
    jobs: ids.length,
    clients: opts.clients,
    executorsKilled: kills,
    jobsRetriedAfterAKill: retried,
    refusedSubmissions: refused,
    submitSeconds: Number(submitSeconds.toFixed(2)),
    totalSeconds: Number(totalSeconds.toFixed(2)),
    jobsPerSecond: Number((ids.length / totalSeconds).toFixed(1)),
    submitLatencyMs: { p50: Number(percentile(latencies, 50).toFixed(1)), p99: Number(percentile(latencies, 99).toFixed(1)) },
  };
  log(JSON.stringify(summary));
  if (problems.length) {
    log(`FAILED: ${problems.length} problems\n${problems.slice(0, 20).join('\n')}`);
    return 1;
  }
  log('ok: every accepted job finished once with the right sums');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
