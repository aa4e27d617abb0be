import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { isReady, type ErrorBody, type JobResult, type ReadinessChecks } from '@decisum/shared';

export { serveMetrics, type ReadinessChecks } from '@decisum/shared';

export interface ExecutorMetrics {
  registry: Registry;
  storageRetries: Counter;
  deadLettered: Counter;
  poison: Counter;
  jobsRestored: Counter;
  archiveWrites: Counter<'result'>;
  finished(outcome: { result: JobResult } | { error: ErrorBody }, seconds: number, bytes: number): void;
}

/**
 * The executor's job metrics, in the process's registry (which holds the default Node.js metrics),
 * and, given its readiness checks, the decisum_executor_ready gauge.
 */
export function createExecutorMetrics(registry: Registry, checks?: ReadinessChecks): ExecutorMetrics {
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
  const throughput = new Histogram({
    name: 'decisum_job_throughput_bytes_per_second',
    help: 'Bytes read per second of wall time by a job attempt that reached an outcome',
    buckets: [1e5, 1e6, 1e7, 5e7, 1e8, 2.5e8, 5e8, 1e9, 2e9, 4e9],
    registers,
  });
  if (checks) {
    new Gauge({
      name: 'decisum_executor_ready',
      help: '1 while this executor can take jobs (Redis and RabbitMQ connected, not shutting down), else 0',
      registers,
      collect() {
        this.set(isReady(checks()) ? 1 : 0);
      },
    });
  }
  return {
    registry,
    storageRetries: new Counter({ name: 'decisum_storage_retries_total', help: 'Storage reads resumed after a fault', registers }),
    deadLettered: new Counter({ name: 'decisum_jobs_dead_lettered_total', help: 'Jobs failed by the delivery limit', registers }),
    poison: new Counter({ name: 'decisum_poison_messages_total', help: 'Queue messages that were not jobs', registers }),
    jobsRestored: new Counter({
      name: 'decisum_jobs_restored_total',
      help: 'Jobs Redis lost (its epoch changed) recorded again from their queue messages',
      registers,
    }),
    archiveWrites: new Counter({
      name: 'decisum_archive_writes_total',
      help: 'Writes of finished jobs to the results archive, by result (ok, error)',
      labelNames: ['result'] as const,
      registers,
    }),
    finished(outcome, seconds, n) {
      if ('result' in outcome) { succeeded.inc(); }
      else { failed.inc({ code: outcome.error.code }); }
      duration.observe(seconds);
      bytes.observe(n);
      // A job too quick to time says nothing about read speed.
      if (seconds > 0) { throughput.observe(n / seconds); }
    },
  };
}
