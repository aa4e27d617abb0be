import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ActiveCount, JobStore } from '@decisum/shared';

export interface Metrics {
  registry: Registry;
  jobsSubmitted: Counter;
  httpDuration: Histogram<'method' | 'route' | 'status_code'>;
}

/** The API's metrics in the process's registry: its counters, request durations, and the queue's gauges read from Redis at scrape time. */
export function createMetrics(store: JobStore, registry: Registry): Metrics {
  const registers = [registry];
  const jobsSubmitted = new Counter({ name: 'decisum_jobs_submitted_total', help: 'Jobs accepted by this API process', registers });
  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by route pattern',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  // The gauges of one scrape are collected together: they share one read of the counts.
  let pending: Promise<ActiveCount> | undefined;
  const counts = (): Promise<ActiveCount> => {
    pending ??= store.counts().finally(() => {
      pending = undefined;
    });
    return pending;
  };
  const fromCounts = (name: string, help: string, key: keyof ActiveCount) =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        this.set((await counts())[key]);
      },
    });
  fromCounts('decisum_jobs_active', 'Jobs in work, queued plus running: what GET /api/v1/jobs/active answers', 'active');
  fromCounts('decisum_jobs_queued', 'Jobs waiting for an executor', 'queued');
  fromCounts('decisum_jobs_running', 'Jobs held by an executor with a live lease', 'running');
  new Gauge({
    name: 'decisum_jobs_lease_expired',
    help: 'Running jobs whose lease lapsed and that no executor has claimed again',
    registers,
    async collect() {
      this.set(await store.expiredLeases());
    },
  });
  return { registry, jobsSubmitted, httpDuration };
}

/** Times every request; `route` is the pattern that answered (`/api/v1/jobs/:id`), or `unmatched` (static files, 404s), so the labels stay few. */
export function timeRequests(metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const end = metrics.httpDuration.startTimer({ method: req.method });
    res.once('finish', () => {
      const route: unknown = res.locals.route;
      end({ route: typeof route === 'string' ? route : 'unmatched', status_code: res.statusCode });
    });
    next();
  };
}
