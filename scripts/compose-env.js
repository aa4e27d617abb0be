#!/usr/bin/env node
'use strict';
// Writes the .env that `docker compose` reads: .env.example with every secret it leaves empty
// filled with a fresh random value, so no deployment runs on a well-known password.
//   node scripts/compose-env.js [path]     (default .env; an existing file is never overwritten)
// Values are hex, so they need no escaping inside REDIS_URL and AMQP_URL.
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const secret = () => crypto.randomBytes(24).toString('hex');
// One admin token: its hash goes into API_TOKENS (what the API keeps), the token itself into
// DECISUM_TOKEN (what the CLI sends), in this 0600 file beside the other secrets.
const adminToken = `dcs_${crypto.randomBytes(32).toString('base64url')}`;
const adminEntry = { name: 'admin', sha256: crypto.createHash('sha256').update(adminToken).digest('hex'), scopes: ['admin'] };
// The secrets compose needs; AWS_* name the app's own MinIO user (minio profile).
const generated = {
  REDIS_PASSWORD: secret,
  RABBITMQ_PASSWORD: secret,
  MINIO_ROOT_PASSWORD: secret,
  AWS_ACCESS_KEY_ID: () => 'decisum-app',
  AWS_SECRET_ACCESS_KEY: secret,
  GRAFANA_ADMIN_PASSWORD: secret,
  // Signs callbacks; unused until CALLBACK_HOSTS lists a host.
  CALLBACK_SECRET: secret,
  API_TOKENS: () => JSON.stringify([adminEntry]),
  DECISUM_TOKEN: () => adminToken,
};

function main() {
  const target = path.resolve(process.argv[2] || path.join(root, '.env'));
  if (fs.existsSync(target)) {
    console.error(`compose-env: ${path.relative(process.cwd(), target) || target} exists; remove it first to write a new one`);
    process.exit(1);
  }
  const lines = fs.readFileSync(path.join(root, '.env.example'), 'utf8').split('\n');
  const filled = [];
  const out = lines.map((line) => {
    const m = /^([A-Z][A-Z0-9_]*)=$/.exec(line);
    if (!m || !(m[1] in generated)) { return line; }
    filled.push(m[1]);
    return `${m[1]}=${generated[m[1]]()}`;
  });
  const missing = Object.keys(generated).filter((k) => !filled.includes(k));
  if (missing.length) {
    console.error(`compose-env: .env.example has no empty ${missing.join(', ')} to fill`);
    process.exit(1);
  }
  fs.writeFileSync(target, out.join('\n'), { mode: 0o600 });
  console.log(`compose-env: wrote ${target} with new ${filled.join(', ')}`);
}

main();
