import http from 'node:http';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { ErrorBody, JobResult } from '@decisum/shared';

export interface ExecutorMetrics {
  registry: Registry;
  storageRetries: Counter;
  deadLettered: Counter;
  poison: Counter;
  finished(outcome: { result: JobResult } | { error: ErrorBody }, seconds: number, bytes: number): void;
}

/** The executor's job metrics, in the process's registry (which holds the default Node.js metrics). */
export function createExecutorMetrics(registry: Registry): ExecutorMetrics {
  const registers = [registry];
  const succeeded = new Counter({ name: 'decisum_jobs_succeeded_total', help: 'Jobs that produced a result', registers });
  const failed = new Counter({
    name: 'decisum_jobs_failed_total',
    help: 'Jobs that failed, by error code',
    labelNames: ['code'],
    registers,
  });
  const duration = new Histogram({
    name: 'decisum_job_duration_seconds',
    help: 'Wall time of a job attempt that reached an outcome',
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300],
    registers,
  });
  const bytes = new Histogram({
    name: 'decisum_job_bytes',
    help: 'Bytes read by a job attempt that reached an outcome',
    buckets: [1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10],
    registers,
  });
  return {
    registry,
    storageRetries: new Counter({ name: 'decisum_storage_retries_total', help: 'Storage reads resumed after a fault', registers }),
    deadLettered: new Counter({ name: 'decisum_jobs_dead_lettered_total', help: 'Jobs failed by the delivery limit', registers }),
    poison: new Counter({ name: 'decisum_poison_messages_total', help: 'Queue messages that were not jobs', registers }),
    finished(outcome, seconds, n) {
      if ('result' in outcome) { succeeded.inc(); }
      else { failed.inc({ code: outcome.error.code }); }
      duration.observe(seconds);
      bytes.observe(n);
    },
  };
}

/** A bare /metrics endpoint for Prometheus to scrape each executor. */
export function serveMetrics(registry: Registry, port: number): http.Server {
  return http
    .createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      registry.metrics().then(
        (body) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(body),
        () => res.writeHead(500).end(),
      );
    })
    .listen(port);
}
