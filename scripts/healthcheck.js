#!/usr/bin/env node
'use strict';
// The image's HEALTHCHECK; one image runs both processes. Healthy means ready to work:
// the API's /readyz (Redis and RabbitMQ answer), or the executor's /readyz on its metrics
// port (Redis and RabbitMQ connected, not shutting down). An executor with metrics off
// (EXECUTOR_METRICS_PORT=0) has no port to ask, so it counts as healthy while it runs.
// The role comes from DECISUM_ROLE, else from the container's command line.
const fs = require('node:fs');

function role() {
  if (process.env.DECISUM_ROLE) { return process.env.DECISUM_ROLE; }
  try {
    return fs.readFileSync('/proc/1/cmdline', 'utf8').includes('executor') ? 'executor' : 'api';
  } catch {
    return 'api';
  }
}

function probe(port) {
  fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(4000) })
    .then((res) => process.exit(res.ok ? 0 : 1))
    .catch(() => process.exit(1));
}

if (role() === 'executor') {
  const port = process.env.EXECUTOR_METRICS_PORT || '9464';
  if (port === '0') { process.exit(0); }
  probe(port);
} else {
  probe(process.env.PORT || '8080');
}
