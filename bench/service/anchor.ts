/*
 * The BullMQ anchor of the service benchmark, one process: a node:http server that adds a BullMQ
 * job per POST, and a worker (concurrency ANCHOR_CONCURRENCY, 8) that reads the file and counts
 * its lines. It answers the three calls the load generator makes, in decisum's words
 * (bench/service/load.ts). Environment: REDIS_URL, ANCHOR_PREFIX, DATA_DIR, ANCHOR_CONCURRENCY.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Queue, QueueEvents, Worker, type JobState } from 'bullmq';
import { countLines, env, log, readBody, send } from './child';

const connection = { url: env('REDIS_URL') };
const prefix = env('ANCHOR_PREFIX');
const dataDir = env('DATA_DIR');
const QUEUE = 'jobs';

// BullMQ's states in decisum's words, so one poller serves both.
const STATUS: Record<JobState | 'unknown', string> = {
  completed: 'succeeded',
  failed: 'failed',
  active: 'running',
  waiting: 'queued',
  'waiting-children': 'queued',
  prioritized: 'queued',
  delayed: 'queued',
  unknown: 'unknown',
};

async function main(): Promise<void> {
  const queue = new Queue(QUEUE, { connection, prefix });
  const worker = new Worker(
    QUEUE,
    async (job) => countLines(await readFile(path.join(dataDir, (job.data as { file: string }).file))),
    { connection, prefix, concurrency: Number(process.env.ANCHOR_CONCURRENCY ?? 8) },
  );
  worker.on('failed', (job, err) => log('job failed', { jobId: job?.id, err: err.message }));
  const events = new QueueEvents(QUEUE, { connection, prefix });
  await Promise.all([queue.waitUntilReady(), worker.waitUntilReady(), events.waitUntilReady()]);

  const route = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = req.url ?? '';
    if (req.method === 'POST' && url === '/api/v1/jobs') {
      const { file } = JSON.parse(await readBody(req)) as { file?: unknown };
      if (typeof file !== 'string') { return send(res, 400, { error: 'file is required' }); }
      const job = await queue.add('sum', { file });
      return send(res, 202, { id: job.id, status: 'queued' });
    }
    if (req.method === 'GET' && url === '/api/v1/jobs/active') {
      const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
      const active = Object.values(c).reduce((a, b) => a + b, 0);
      return send(res, 200, { active, queued: active - (c.active ?? 0), running: c.active ?? 0 });
    }
    const m = /^\/api\/v1\/jobs\/([^/?]+)(?:\?wait=(\d+))?$/.exec(url);
    if (req.method === 'GET' && m) {
      // ?wait=SECONDS, as decisum's: answer once the job is final (BullMQ's QueueEvents), or when the time is up.
      const waiting = m[2] === undefined ? undefined : await queue.getJob(m[1]);
      await waiting?.waitUntilFinished(events, Number(m[2]) * 1000).catch(() => undefined);
      const state = await queue.getJobState(m[1]);
      if (state === 'unknown') { return send(res, 404, { error: 'no such job' }); }
      if (state !== 'completed' && state !== 'failed') { return send(res, 200, { id: m[1], status: STATUS[state] }); }
      // Once final, the job's times too, for the benchmark's idle timeline.
      const job = await queue.getJob(m[1]);
      const iso = (ms?: number) => (ms === undefined ? undefined : new Date(ms).toISOString());
      return send(res, 200, {
        id: m[1],
        status: STATUS[state],
        createdAt: iso(job?.timestamp),
        startedAt: iso(job?.processedOn),
        finishedAt: iso(job?.finishedOn),
      });
    }
    send(res, 404, { error: 'not found' });
  };
  const server = http.createServer((req, res) => {
    route(req, res).catch((err: Error) => send(res, 500, { error: err.message }));
  });
  server.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  log('anchor listening', { port: (server.address() as AddressInfo).port, concurrency: worker.opts.concurrency });

  const stop = () => {
    server.close();
    server.closeAllConnections();
    Promise.all([worker.close(), queue.close(), events.close()]).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  log('anchor failed', { err: err instanceof Error ? err.stack : String(err) });
  process.exit(1);
});
