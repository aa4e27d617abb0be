import { Router } from 'express';
import { HealthSchema, ReadySchema, type EpochReport, type Health, type Ready } from '@decisum/shared';
import type { ApiDocs } from '../openapi';

export interface OperationsDeps {
  /** Readiness checks by name: each resolves true when its dependency answers. */
  ready: Record<string, () => Promise<boolean> | boolean>;
  /** What this process knows of the Redis epoch, shown on /readyz. */
  epoch?: () => EpochReport;
}

/** Liveness and readiness. Prometheus metrics are on their own port (METRICS_PORT), not this public one. */
export function createOperationsRouter({ ready, epoch }: OperationsDeps, docs: ApiDocs): Router {
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

  return router;
}
