import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { JobStore } from '@decisum/shared';

export interface Metrics {
  registry: Registry;
  jobsSubmitted: Counter;
}

/** The API's registry: its own counters, plus the queue's gauges read from Redis at scrape time. */
export function createMetrics(store: JobStore): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'decisum_api_' });
  const jobsSubmitted = new Counter({
    name: 'decisum_jobs_submitted_total',
    help: 'Jobs accepted by this API process',
    registers: [registry],
  });
  const counts = async () => store.counts();
  new Gauge({
    name: 'decisum_jobs_queued',
    help: 'Jobs waiting for an executor',
    registers: [registry],
    async collect() {
      this.set((await counts()).queued);
    },
  });
  new Gauge({
    name: 'decisum_jobs_running',
    help: 'Jobs held by an executor with a live lease',
    registers: [registry],
    async collect() {
      this.set((await counts()).running);
    },
  });
  return { registry, jobsSubmitted };
}
