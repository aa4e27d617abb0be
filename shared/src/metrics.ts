import http from 'node:http';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { EpochReport } from './epoch';

/** A process's metrics registry, with prom-client's default metrics under their standard names (stock Node.js dashboards look for these). */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** What a process's readiness rests on, by name (redis, rabbitmq, …): true while that part works. */
export type ReadinessChecks = () => Record<string, boolean>;

export interface MetricsServerOptions {
  /** What /readyz checks; ready when absent. */
  checks?: ReadinessChecks;
  /** The interface to listen on; every one when absent. */
  host?: string;
  /** What this process knows of the Redis epoch, shown on /readyz. */
  epoch?: () => EpochReport;
}

export const isReady = (checks: Record<string, boolean>): boolean => Object.values(checks).every(Boolean);

/**
 * A process's metrics port (the executor's EXECUTOR_METRICS_PORT, the API's METRICS_PORT), apart from any public one: /metrics for Prometheus, /healthz (the process answers) and
 * /readyz (every readiness check passes; 503 with the failing ones otherwise, and what the process
 * knows of the Redis epoch either way) for health checks.
 */
export function serveMetrics(registry: Registry, port: number, options: MetricsServerOptions = {}): http.Server {
  const { checks = () => ({}), host, epoch } = options;
  return http
    .createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/healthz') {
        json(res, 200, { status: 'ok' });
        return;
      }
      if (path === '/readyz') {
        const state = checks();
        const ready = isReady(state);
        json(res, ready ? 200 : 503, { status: ready ? 'ready' : 'unavailable', checks: state, redisEpoch: epoch?.() });
        return;
      }
      if (path !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      registry.metrics().then(
        (body) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(body),
        () => res.writeHead(500).end(),
      );
    })
    .listen(port, host);
}

function json(res: http.ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
}
