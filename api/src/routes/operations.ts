import { Router } from 'express';
import { HealthSchema, ReadySchema, type EpochReport, type Health, type Ready } from '@decisum/shared';
import type { ApiDocs } from '../openapi';
import type { Metrics } from '../metrics';

export interface OperationsDeps {
  /** Readiness checks by name: each resolves true when its dependency answers. */
  ready: Record<string, () => Promise<boolean> | boolean>;
  metrics?: Metrics;
  /** What this process knows of the Redis epoch, shown on /readyz. */
  epoch?: () => EpochReport;
}

/** Liveness, readiness and Prometheus metrics. */
export function createOperationsRouter({ ready, metrics, epoch }: OperationsDeps, docs: ApiDocs): Router {
  const router = Router();
  const routes = docs.routes(router);
  const tags = ['operations'];

  routes.add(
    'get',
    '/healthz',
    (_req, res) => {
      res.json({ status: 'ok' } satisfies Health);
    },
    { path: '/healthz', tags, summary: 'Liveness', responses: { 200: { description: 'The process is up', content: { 'application/json': { schema: HealthSchema } } } } },
  );

  routes.add(
    'get',
    '/readyz',
    async (_req, res) => {
      const checks: Record<string, boolean> = {};
      for (const [name, check] of Object.entries(ready)) {
        checks[name] = await Promise.resolve()
          .then(check)
          .catch(() => false);
      }
      const ok = Object.values(checks).every(Boolean);
      res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'unavailable', checks, redisEpoch: epoch?.() } satisfies Ready);
    },
    {
      path: '/readyz',
      tags,
      summary: 'Readiness: Redis and RabbitMQ reachable; whether Redis lost its data (redisEpoch)',
      responses: {
        200: { description: 'Ready', content: { 'application/json': { schema: ReadySchema, example: { status: 'ready', checks: { rabbitmq: true, redis: true } } } } },
        503: {
          description: 'A dependency is unreachable',
          content: { 'application/json': { schema: ReadySchema, example: { status: 'unavailable', checks: { rabbitmq: false, redis: true } } } },
        },
      },
    },
  );

  if (metrics) {
    const { registry } = metrics;
    routes.add(
      'get',
      '/metrics',
      async (_req, res) => {
        res.type(registry.contentType).send(await registry.metrics());
      },
      {
        path: '/metrics',
        tags,
        summary: 'Prometheus metrics',
        description:
          'Jobs submitted, the queued and running gauges, HTTP request durations and process metrics. Executors serve their own on `EXECUTOR_METRICS_PORT`.',
        responses: {
          200: {
            description: 'Prometheus text exposition format',
            content: {
              'text/plain': {
                schema: { type: 'string' },
                example: '# HELP decisum_jobs_queued Jobs waiting for an executor\n# TYPE decisum_jobs_queued gauge\ndecisum_jobs_queued 0\n',
              },
            },
          },
        },
      },
    );
  }
  return router;
}
