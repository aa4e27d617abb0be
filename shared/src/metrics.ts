import { Registry, collectDefaultMetrics } from 'prom-client';

/** A process's metrics registry, with prom-client's default metrics under their standard names (stock Node.js dashboards look for these). */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}
