import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createRegistry } from '@decisum/shared';
import { createExecutorMetrics, serveMetrics } from '../../src/metrics';
import { sample } from '../../../test/support/prometheus';

describe('executor metrics', () => {
  it('counts outcomes by code, observes duration and bytes, and counts retries and dead letters', async () => {
    const m = createExecutorMetrics(createRegistry());
    m.finished({ result: { rows: 2, columns: [] } }, 0.2, 1_500);
    m.finished({ result: { rows: 1, columns: [] } }, 3, 2_000_000);
    m.finished({ error: { code: 'NON_NUMERIC', message: 'row 3: "x" is not a number', row: 3 } }, 0.01, 40);
    m.storageRetries.inc(2);
    m.deadLettered.inc();
    m.poison.inc();

    const text = await m.registry.metrics();
    expect(sample(text, 'decisum_jobs_succeeded_total')).toBe(2);
    expect(sample(text, 'decisum_jobs_failed_total', '{code="NON_NUMERIC"}')).toBe(1);
    expect(sample(text, 'decisum_job_duration_seconds_count')).toBe(3);
    expect(sample(text, 'decisum_job_duration_seconds_sum')).toBeCloseTo(3.21);
    expect(sample(text, 'decisum_job_duration_seconds_bucket', '{le="0.5"}')).toBe(2);
    expect(sample(text, 'decisum_job_bytes_count')).toBe(3);
    expect(sample(text, 'decisum_job_bytes_bucket', '{le="10000"}')).toBe(2);
    // 1,500 B in 0.2 s, 2 MB in 3 s, 40 B in 0.01 s: 7,500, 666,667 and 4,000 B/s.
    expect(sample(text, 'decisum_job_throughput_bytes_per_second_count')).toBe(3);
    expect(sample(text, 'decisum_job_throughput_bytes_per_second_bucket', '{le="100000"}')).toBe(2);
    expect(sample(text, 'decisum_job_throughput_bytes_per_second_bucket', '{le="1000000"}')).toBe(3);
    expect(sample(text, 'decisum_storage_retries_total')).toBe(2);
    expect(sample(text, 'decisum_jobs_dead_lettered_total')).toBe(1);
    expect(sample(text, 'decisum_poison_messages_total')).toBe(1);
    // The default metrics are there; CPU time since the registry was made may still be 0 ticks on a busy machine.
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(0);
    // No readiness checks given: no readiness gauge to mislead.
    expect(text).not.toContain('decisum_executor_ready');
  });

  it('reports readiness as a gauge read at scrape time', async () => {
    let state = { redis: true, rabbitmq: true };
    const m = createExecutorMetrics(createRegistry(), () => state);
    expect(sample(await m.registry.metrics(), 'decisum_executor_ready')).toBe(1);
    state = { redis: true, rabbitmq: false };
    expect(sample(await m.registry.metrics(), 'decisum_executor_ready')).toBe(0);
  });

  it('answers /healthz always and /readyz only while every check passes, naming the failing one', async () => {
    let state: Record<string, boolean> = { redis: true, rabbitmq: true, accepting: true };
    const m = createExecutorMetrics(createRegistry(), () => state);
    const server = serveMetrics(m.registry, 0, { checks: () => state });
    await once(server, 'listening');
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      let res = await fetch(`${base}/readyz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ready', checks: state });

      state = { redis: true, rabbitmq: false, accepting: true };
      res = await fetch(`${base}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ status: 'unavailable', checks: { redis: true, rabbitmq: false, accepting: true } });
      res = await fetch(`${base}/healthz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ok' });
      expect(sample(await (await fetch(`${base}/metrics`)).text(), 'decisum_executor_ready')).toBe(0);

      expect((await fetch(`${base}/readyz`, { method: 'POST' })).status).toBe(405);
    } finally {
      server.close();
    }
  });

  it('serves /metrics over HTTP for Prometheus, and nothing else', async () => {
    const m = createExecutorMetrics(createRegistry());
    m.storageRetries.inc();
    const server = serveMetrics(m.registry, 0);
    await once(server, 'listening');
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const res = await fetch(`${base}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(sample(await res.text(), 'decisum_storage_retries_total')).toBe(1);
      expect((await fetch(`${base}/`)).status).toBe(404);
    } finally {
      server.close();
    }
  });
});
