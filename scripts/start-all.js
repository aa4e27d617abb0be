#!/usr/bin/env node
// `npm start`: the quick start. Makes sure Redis and RabbitMQ answer (starting them on this kind of
// machine if they don't), seeds DATA_DIR with the reference sample, then runs one API and one executor.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function listening(url, fallbackPort) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port) || fallbackPort }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
    s.setTimeout(2000, () => {
      s.destroy();
      resolve(false);
    });
  });
}

async function main() {
  const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  const amqpUrl = process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672';
  const up = (await listening(redisUrl, 6379)) && (await listening(amqpUrl, 5672));
  if (!up) {
    console.error('start: Redis or RabbitMQ is not listening; starting them with scripts/services.sh');
    const r = spawnSync('bash', [path.join(root, 'scripts/services.sh')], { stdio: 'inherit' });
    if (r.status !== 0) { process.exit(r.status || 1); }
  }

  const dataDir = path.resolve(process.env.DATA_DIR || './data');
  fs.mkdirSync(dataDir, { recursive: true });
  const sample = path.join(dataDir, 'sample.csv');
  if (!fs.existsSync(sample)) { fs.copyFileSync(path.join(root, 'test/fixtures/sample.csv'), sample); }

  const env = { ...process.env, DATA_DIR: dataDir };
  if (Number(process.versions.node.split('.')[0]) < 22) {
    // Said once here rather than by the AWS SDK in each child (its documented switch turns its notice off).
    console.error(`start: Node ${process.versions.node} is past its end of life; decisum supports Node 22 and 24`);
    env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ||= 'true';
  }
  const children = [
    spawn(process.execPath, [path.join(root, 'api/dist/main.js')], { stdio: 'inherit', env }),
    spawn(process.execPath, [path.join(root, 'executor/dist/main.js')], { stdio: 'inherit', env }),
  ];
  let exiting = false;
  const stop = (signal) => {
    if (exiting) { return; }
    exiting = true;
    for (const c of children) { if (c.exitCode === null) { c.kill(signal); } }
  };
  process.on('SIGINT', () => stop('SIGTERM'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  let remaining = children.length;
  let code = 0;
  for (const c of children) {
    c.on('exit', (status) => {
      if (status) { code = status; }
      if (!exiting) { stop('SIGTERM'); } // one died: take the other down too, so the failure is visible
      if (--remaining === 0) { process.exit(code); }
    });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
