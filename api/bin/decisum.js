#!/usr/bin/env node
'use strict';
// npx decisum: runs the compiled CLI (api/src/cli.ts → api/dist/cli.js).
const path = require('node:path');

const compiled = path.join(__dirname, '..', 'dist', 'cli.js');
let cli;
try {
  cli = require(compiled);
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes(compiled)) {
    process.stderr.write('decisum: the CLI is not built yet: run `npm run build` first\n');
    process.exit(2);
  }
  throw err;
}
cli.run();
