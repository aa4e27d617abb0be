import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse as parseCsv } from 'csv-parse/sync';
import type { Job } from '@decisum/shared';
import { SAMPLE } from '../../test/support/sample';
import { freePort } from '../../test/support/servers';
import { startStack, type Stack } from '../../test/support/stack';

/**
 * The CLI as a shell sees it: the bin shim run as a child process on the compiled api/dist, its
 * exit codes, stdout for data and stderr for messages.
 */

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'api', 'bin', 'decisum.js');
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'api', 'package.json'), 'utf8')) as { version: string }).version;
const COMMANDS = ['submit', 'status', 'cancel', 'list', 'active', 'upload', 'download', 'generate-csv'];

// The shim runs api/dist: bring it up to date with the sources first (incremental, quick when fresh).
beforeAll(async () => {
  try {
    await promisify(execFile)(process.execPath, [require.resolve('typescript/bin/tsc'), '-b', 'api'], { cwd: ROOT });
  } catch (err) {
    // Type errors still emit; they are `npm run typecheck`'s to report. A missing file is ours.
    if (!fs.existsSync(path.join(ROOT, 'api', 'dist', 'cli.js'))) { throw err; }
    console.warn(`tsc -b api reported errors; testing the files it emitted:\n${(err as { stdout?: string }).stdout ?? String(err)}`);
  }
}, 120_000);

let scratch: string;
beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-cli-'));
});
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Asynchronous on purpose: the scripted API below serves from this same process. */
async function decisum(args: string[], options: { env?: Record<string, string>; input?: string; cwd?: string } = {}): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { PATH: process.env.PATH, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  // A command that exits without reading its input (help, say) may close the pipe first: EPIPE is no failure.
  child.stdin.on('error', () => undefined);
  child.stdin.end(options.input ?? '');
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/** The CLI on a pseudo-terminal (util-linux script): stdout and stderr both land in its output. */
async function onTerminal(args: string[]): Promise<{ code: number | null; output: string }> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, BIN, ...args].map(quote).join(' ');
  const child = spawn('script', ['-q', '-e', '-c', `stty cols 120; ${command}`, '/dev/null'], {
    env: { PATH: process.env.PATH, TERM: 'xterm' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stdin.end();
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, output };
}

function job(overrides: Partial<Job>): Job {
  return {
    id: 'j1',
    owner: 'local',
    status: 'queued',
    file: 'data.csv',
    options: { step: 10, offset: 0 },
    createdAt: '2026-11-25T00:00:00.000Z',
    attempts: 0,
    progress: { bytesRead: 0, bytesTotal: 1000, rows: 0 },
    ...overrides,
  };
}

const USAGE_TAIL = (command: string) => new RegExp(`\\nRun ${command} --help for usage\\.\\n$`);

describe('decisum CLI: help and usage', () => {
  it('--help prints the help on stdout, exit 0, naming every command, the exit codes and the environment', async () => {
    const run = await decisum(['--help']);
    expect(run).toMatchObject({ code: 0 });
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^Usage: decisum \[options\] \[command\]\n\nSum every 10th column/);
    for (const command of COMMANDS) { expect(run.stdout).toMatch(new RegExp(`^  ${command} `, 'm')); }
    expect(run.stdout).toContain('DECISUM_TOKEN');
    expect(run.stdout).toMatch(/^ {2}3 {2}the API is unreachable/m);
    expect((await decisum(['-h'])).stdout).toBe(run.stdout);
    expect((await decisum(['help'])).stdout).toBe(run.stdout);
  });

  it('a bare decisum prints the help on stderr and exits 2', async () => {
    const run = await decisum([]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^Usage: decisum \[options\] \[command\]/);
    expect(run.stderr).toContain('Commands:');
  });

  it('--version and -V print the version', async () => {
    expect(await decisum(['--version'])).toEqual({ code: 0, stdout: `decisum ${VERSION}\n`, stderr: '' });
    expect((await decisum(['-V'])).stdout).toBe(`decisum ${VERSION}\n`);
  });

  it.each(COMMANDS)('help %s gives the command help, as --help and -h after the command do', async (command) => {
    const runs = await Promise.all([decisum(['help', command]), decisum([command, '--help']), decisum([command, '-h'])]);
    for (const run of runs) {
      expect(run).toMatchObject({ code: 0 });
      expect(run.stderr).toBe('');
      expect(run.stdout).toBe(runs[0].stdout);
    }
    expect(runs[0].stdout).toMatch(new RegExp(`^Usage: decisum ${command} `));
    expect(runs[0].stdout).toContain('Examples:');
    expect(runs[0].stdout).toContain('--url <url>'); // the global options are shown too
  });

  it.each([
    [['frobnicate'], 'decisum', /^decisum: unknown command 'frobnicate'\n/],
    [['sbumit'], 'decisum', /^decisum: unknown command 'sbumit'\n\(Did you mean submit\?\)/],
    [['--bogus'], 'decisum', /^decisum: unknown option '--bogus'\n/],
    [['help', 'nope'], 'decisum', /^decisum: unknown command 'nope'\n/],
    [['submit', 'a.csv', '--bogus'], 'decisum submit', /^decisum submit: unknown option '--bogus'\n/],
    [['list', '--al'], 'decisum list', /^decisum list: unknown option '--al'\n\(Did you mean --all\?\)/],
    [['submit'], 'decisum submit', /^decisum submit: missing required argument 'location'\n/],
    [['submit', 'a.csv', 'b.csv'], 'decisum submit', /too many arguments for 'submit'\. Expected 1 argument but got 2\./],
    [['submit', 'a.csv', '--step'], 'decisum submit', /option '-s, --step <n>' argument missing/],
    [['submit', 'a.csv', '-s', '0'], 'decisum submit', /^decisum submit: --step must be a whole number of at least 1, not "0"\n/],
    [['submit', 'a.csv', '--offset', '-1'], 'decisum submit', /--offset must be a whole number, not "-1"/],
    [['submit', 'a.csv', '-d', 'x'], 'decisum submit', /--delimiter must be one of , ; \| tab auto, not "x"/],
    [['status'], 'decisum status', /missing required argument 'id'/],
    [['cancel'], 'decisum cancel', /missing required argument 'id'/],
    [['active', 'extra'], 'decisum active', /too many arguments for 'active'/],
    [['list', '-s', 'done'], 'decisum list', /argument 'done' is invalid\. Allowed choices are queued, running, succeeded, failed, cancelled\./],
    [['list', '-n', '0'], 'decisum list', /--limit must be a whole number from 1 to 1000, not "0"/],
    [['list', '--limit', '1001'], 'decisum list', /--limit must be a whole number from 1 to 1000, not "1001"/],
    [['list', '--cursor', 'abc'], 'decisum list', /--cursor must be the number a previous page ended with, not "abc"/],
    [['upload'], 'decisum upload', /missing required argument 'file'/],
    [['upload', 'no-such-file.csv', 'x.csv'], 'decisum upload', /cannot read no-such-file\.csv: ENOENT/],
    [['upload', 'api'], 'decisum upload', /api is not a file/],
    [['upload', '-'], 'decisum upload', /needs a LOCATION/],
    [['upload', 'package.json', '/etc/x.csv'], 'decisum upload', /LOCATION \/etc\/x\.csv is absolute/],
    [['download'], 'decisum download', /missing required argument 'location'/],
    [['download', 'reports/'], 'decisum download', /LOCATION reports\/ names a folder/],
    [['download', 'x.csv', 'package.json'], 'decisum download', /package\.json exists; pass --force to replace it/],
    [['download', 'x.csv', 'api'], 'decisum download', /api is a folder: give a file name/],
    [['generate-csv', '-c', '3'], 'decisum generate-csv', /needs --rows N and --cols M/],
    [['generate-csv', '-r', '3', '-c', '3', '-k', 'float'], 'decisum generate-csv', /Allowed choices are sample, int, decimal/],
    [['active', '--url', 'not a url'], 'decisum active', /--url not a url is not a URL/],
    [['active', '-u', 'ftp://example.com'], 'decisum active', /must be an http:\/\/ or https:\/\/ URL/],
    [['active', '--token', 'two words'], 'decisum active', /the token \(--token or DECISUM_TOKEN\) must be one word/],
  ])('%j is a usage error: exit 2, one message on stderr, nothing on stdout', async (args, command, message) => {
    const run = await decisum(args);
    expect(run).toEqual({ code: 2, stdout: '', stderr: expect.stringMatching(message) });
    expect(run.stderr).toMatch(USAGE_TAIL(command));
    // Parser internals stay out of the messages.
    expect(run.stderr).not.toMatch(/positional argument|TypeError|at .*\.js:\d+/);
  });

  it('a token in DECISUM_TOKEN with a line break is refused before anything is sent', async () => {
    const run = await decisum(['active'], { env: { DECISUM_TOKEN: 'abc\ndef' } });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/must be one word of printable ASCII/);
    expect(run.stderr).not.toContain('abc');
  });
});

/** Two passes, as a double-encoded file needs: each line is one quoted field holding a CSV record. */
function parseDoubleEncoded(text: string): string[][] {
  return parseCsv(text).map((outer) => {
    expect(outer).toHaveLength(1);
    return parseCsv(outer[0])[0];
  });
}

describe('decisum CLI: generate-csv', () => {
  it('writes int and decimal CSVs of the asked shape to stdout', async () => {
    const ints = await decisum(['generate-csv', '--rows', '5', '--cols', '12', '--kind', 'int']);
    expect(ints.code).toBe(0);
    expect(ints.stderr).toBe('');
    const rows = parseCsv(ints.stdout);
    expect(rows[0]).toEqual(Array.from({ length: 12 }, (_, i) => `col${i + 1}`));
    expect(rows).toHaveLength(6);
    for (const row of rows.slice(1)) {
      expect(row).toHaveLength(12);
      for (const cell of row) { expect(Math.abs(Number(cell))).toBeLessThanOrEqual(1000); }
      expect(row.every((cell) => /^-?\d+$/.test(cell))).toBe(true);
    }
    const decimals = await decisum(['generate-csv', '-r', '3', '-c', '4', '-k', 'decimal']);
    const cells = parseCsv(decimals.stdout).slice(1).flat();
    expect(cells).toHaveLength(12);
    expect(cells.every((c) => /^-?\d+\.\d\d$/.test(c))).toBe(true);
  });

  it('--kind sample writes the reference sample shape: double-encoded lines, an index column, col0…', async () => {
    const fixture = fs.readFileSync(SAMPLE, 'utf8');
    const reference = parseDoubleEncoded(fixture);
    const columns = reference[0].length - 1;
    const run = await decisum(['generate-csv', '--rows', '4', '--cols', String(columns)]);
    expect(run).toMatchObject({ code: 0 });
    // The header line is byte for byte the fixture's.
    expect(run.stdout.split('\n')[0]).toBe(fixture.split('\n')[0]);
    const generated = parseDoubleEncoded(run.stdout);
    expect(generated).toHaveLength(5);
    expect(generated[0]).toEqual(reference[0]);
    expect(generated[0][0]).toBe('');
    for (const [i, row] of generated.slice(1).entries()) {
      expect(row).toHaveLength(columns + 1);
      expect(row[0]).toBe(`2020-04-13 0${i}:00:00+00:00`);
      expect(row.slice(1).every((c) => /^0\.\d+$/.test(c))).toBe(true);
    }
    expect(reference[1][0]).toMatch(/^2020-04-13 00:00:00\+00:00$/);
  });

  it('gives the same bytes for the same seed, to stdout or --out', async () => {
    const out = path.join(scratch, 'g.csv');
    const a = await decisum(['generate-csv', '--rows', '50', '--cols', '7', '--seed', '9', '--kind', 'decimal']);
    const b = await decisum(['generate-csv', '--rows', '50', '--cols', '7', '--seed', '9', '--kind', 'decimal', '-o', out]);
    const c = await decisum(['generate-csv', '--rows', '50', '--cols', '7', '--seed', '10', '--kind', 'decimal']);
    expect(b).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(fs.readFileSync(out, 'utf8')).toBe(a.stdout);
    expect(c.stdout).not.toBe(a.stdout);
  });

  it('exits 0 quietly when the reader goes away (| head)', async () => {
    const child = spawn('bash', ['-c', `set -o pipefail; "${process.execPath}" "${BIN}" generate-csv --rows 3000000 --cols 50 | head -c 100 >/dev/null`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const [code] = (await once(child, 'close')) as [number];
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  });
});

describe('decisum CLI: an API it cannot use', () => {
  it.each([['active'], ['list'], ['cancel', 'abc'], ['download', 'x.csv', '-']])('%j exits 3 and says so when nothing listens at the URL', async (...args) => {
    const port = await freePort();
    const run = await decisum([...args, '--url', `http://127.0.0.1:${port}`]);
    expect(run.code).toBe(3);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      `decisum ${args[0]}: cannot reach http://127.0.0.1:${port}: ECONNREFUSED; is the API running? Set --url or DECISUM_URL\n`,
    );
  });

  it('takes the URL from DECISUM_URL, with --url before the command winning over it', async () => {
    const port = await freePort();
    const fromEnv = await decisum(['status', 'abc'], { env: { DECISUM_URL: `http://127.0.0.1:${port}` } });
    expect(fromEnv.code).toBe(3);
    expect(fromEnv.stderr).toContain(`cannot reach http://127.0.0.1:${port}`);
    const other = await freePort();
    const flag = await decisum(['-u', `http://127.0.0.1:${other}`, 'status', 'abc'], {
      env: { DECISUM_URL: `http://127.0.0.1:${port}` },
    });
    expect(flag.stderr).toContain(`cannot reach http://127.0.0.1:${other}`);
  });
});

describe('decisum CLI: against a scripted API', () => {
  let server: http.Server;
  let url: string;
  /** What the scripted API answers next for GET /api/v1/jobs/j1, or sends next on j1's event stream: the last one repeats. */
  let script: Job[] = [];
  const nextOfScript = () => (script.length > 1 ? script.shift()! : script[0]);
  /** The event stream: served (each connection ends after `cutAfter` events, or the final one), or absent as on an API from before it. */
  let events: { served: boolean; cutAfter?: number } = { served: true };
  let eventSeq = 0;
  const requests: { method: string; url: string; body: string; headers: http.IncomingHttpHeaders }[] = [];
  /** Twelve jobs, newest first, served in pages by the sequence-number cursor the real API uses. */
  const history = Array.from({ length: 12 }, (_, i) =>
    job({ id: `h${12 - i}`, status: 'succeeded', result: { rows: 12 - i, columns: [] }, createdAt: `2026-11-25T00:00:${String(12 - i).padStart(2, '0')}.000Z` }),
  );
  const problem = (res: http.ServerResponse, status: number, code: string, detail: string) =>
    res.writeHead(status, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ title: code, status, detail, code }));

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => {
        requests.push({ method: req.method!, url: req.url!, body, headers: req.headers });
        const u = new URL(req.url!, 'http://x');
        const send = (status: number, value: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
        if (req.method === 'POST' && u.pathname === '/api/v1/jobs') { return send(202, job({})); }
        if (req.method === 'GET' && u.pathname === '/api/v1/jobs/active') { return send(200, { active: 3, queued: 1, running: 2 }); }
        if (req.method === 'GET' && u.pathname === '/api/v1/jobs') {
          const limit = Number(u.searchParams.get('limit') ?? 50);
          const status = u.searchParams.get('status');
          const cursor = Number(u.searchParams.get('cursor') ?? 13);
          const rest = history.filter((j) => Number(j.id.slice(1)) < cursor && (status === null || j.status === status));
          const jobs = rest.slice(0, limit);
          return send(200, rest.length > limit ? { jobs, nextCursor: jobs.at(-1)!.id.slice(1) } : { jobs });
        }
        if (req.method === 'GET' && u.pathname === '/api/v1/jobs/j1') { return send(200, nextOfScript()); }
        if (req.method === 'GET' && u.pathname === '/api/v1/events') {
          if (!events.served) { return problem(res, 404, 'NOT_FOUND', 'no route GET /api/v1/events'); }
          if (u.searchParams.get('job') !== 'j1') { return problem(res, 404, 'JOB_NOT_FOUND', 'no such job'); }
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          // One state or progress change every 50 ms, as an executor's reports arrive.
          let sent = 0;
          const tick = () => {
            const next = nextOfScript();
            res.write(`: keep-alive\n\nid: 1-${eventSeq++}\nevent: job\ndata: ${JSON.stringify(next)}\n\n`);
            sent += 1;
            if (['succeeded', 'failed', 'cancelled'].includes(next.status) || sent === events.cutAfter) { res.end(); }
            else { setTimeout(tick, 50); }
          };
          return tick();
        }
        if (req.method === 'GET' && u.pathname === '/api/v1/jobs/secret') {
          return req.headers.authorization === 'Bearer s3cret' ? send(200, job({ id: 'secret' })) : problem(res, 401, 'UNAUTHORIZED', 'a bearer token is required');
        }
        if (req.method === 'DELETE' && u.pathname === '/api/v1/jobs/j1') { return send(200, job({ status: 'cancelled', finishedAt: '2026-11-25T00:00:01.000Z' })); }
        if (req.method === 'DELETE' && u.pathname === '/api/v1/jobs/done') {
          return problem(res, 409, 'JOB_FINISHED', 'job done already succeeded; only queued or running jobs can be cancelled');
        }
        if (req.method === 'PUT' && u.pathname === '/api/v1/files/local/exists.csv' && req.headers['if-none-match'] === '*') {
          return problem(res, 412, 'FILE_EXISTS', 'exists.csv already exists');
        }
        if (req.method === 'PUT' && u.pathname.startsWith('/api/v1/files/')) {
          const location = decodeURIComponent(u.pathname.replace(/^\/api\/v1\/files\/(local\/|s3\/)/, (_, k: string) => (k === 's3/' ? 's3://' : '')));
          return send(201, { location, size: Buffer.byteLength(body), modified: '2026-11-25T00:00:00.000Z' });
        }
        if (req.method === 'GET' && u.pathname === '/api/v1/files/local/reports/a.csv') {
          return res.writeHead(200, { 'content-type': 'text/csv', 'content-length': '8' }).end('a,b\n1,2\n');
        }
        if (req.method === 'GET' && u.pathname === '/api/v1/files/local/cut.csv') {
          // Promises 1000 bytes, sends 10, then drops the connection.
          res.writeHead(200, { 'content-type': 'text/csv', 'content-length': '1000' });
          res.write('a,b\n1,2\n3,');
          setTimeout(() => res.socket?.destroy(), 50);
          return;
        }
        if (u.pathname === '/api/v1/jobs/teapot') { return res.writeHead(502).end('<html>bad gateway</html>'); }
        if (u.pathname.startsWith('/api/v1/files/')) { return problem(res, 404, 'FILE_NOT_FOUND', `${u.pathname.split('/').pop()} does not exist`); }
        return problem(res, 404, 'JOB_NOT_FOUND', `no job ${u.pathname}`);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));
  beforeEach(() => {
    requests.length = 0;
    events = { served: true };
  });
  const asked = () => requests.map((r) => `${r.method} ${r.url}`);

  it('submit sends the options and prints the job id; --json prints the job', async () => {
    const run = await decisum(['submit', 's3://b/k.csv', '--step', '5', '--offset', '2', '--delimiter', 'tab', '--no-header', '--idempotency-key', 'k1', '--url', url]);
    expect(run).toMatchObject({ code: 0 });
    expect(run.stdout).toBe('j1\n');
    expect(run.stderr).toContain('submitted job j1');
    expect(JSON.parse(requests[0].body)).toEqual({ file: 's3://b/k.csv', step: 5, offset: 2, delimiter: '\t', header: false });
    expect(requests[0].headers['idempotency-key']).toBe('k1');
    const short = await decisum(['submit', 'a.csv', '-s', '3', '-o', '1', '-d', ';', '-k', 'k2', '-u', url]);
    expect(short.code).toBe(0);
    expect(JSON.parse(requests[1].body)).toEqual({ file: 'a.csv', step: 3, offset: 1, delimiter: ';' });
    expect(requests[1].headers['idempotency-key']).toBe('k2');
    const json = await decisum(['submit', 'data.csv', '-j', '--url', url]);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: 'j1', status: 'queued' });
  });

  it('sends the token as Authorization: Bearer, from DECISUM_TOKEN or --token (which wins), and none without one', async () => {
    await decisum(['active', '--url', url]);
    await decisum(['active', '--url', url], { env: { DECISUM_TOKEN: 'from-env' } });
    await decisum(['active', '--url', url, '--token', 'from-flag'], { env: { DECISUM_TOKEN: 'from-env' } });
    const file = path.join(scratch, 'tok.csv');
    fs.writeFileSync(file, 'a\n1\n');
    await decisum(['upload', file, 'tok.csv', '--url', url, '--token', 'up']);
    await decisum(['download', 'reports/a.csv', '-', '--url', url, '--token', 'down']);
    expect(requests.map((r) => r.headers.authorization)).toEqual([undefined, 'Bearer from-env', 'Bearer from-flag', 'Bearer up', 'Bearer down']);
  });

  it('an API that wants a token: exit 3, and the message says how to give one', async () => {
    const denied = await decisum(['status', 'secret', '--url', url]);
    expect(denied).toEqual({
      code: 3,
      stdout: '',
      stderr: 'decisum status: GET /api/v1/jobs/secret answered 401 UNAUTHORIZED: a bearer token is required (set DECISUM_TOKEN, or pass --token, to a token with access)\n',
    });
    const allowed = await decisum(['status', 'secret', '--url', url], { env: { DECISUM_TOKEN: 's3cret' } });
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toMatch(/^id +secret$/m);
  });

  it('submit --wait off a terminal: a plain progress line per state on stderr, then the sums as a table', async () => {
    script = [
      job({ status: 'running', progress: { bytesRead: 500, bytesTotal: 1000, rows: 80 } }),
      job({
        status: 'succeeded',
        startedAt: '2026-11-25T00:00:01.000Z',
        finishedAt: '2026-11-25T00:00:02.500Z',
        progress: { bytesRead: 1000, bytesTotal: 1000, rows: 168 },
        result: { rows: 168, columns: [{ name: 'col0', index: 1, sum: '87.231379072549653118', value: 87.23137907254966, count: 168 }] },
      }),
    ];
    const run = await decisum(['submit', 'data.csv', '--wait', '--url', url]);
    expect(run).toMatchObject({ code: 0 });
    expect(run.stdout).toBe('column  index  count  sum\ncol0    1      168    87.231379072549653118\n');
    expect(run.stderr).toBe(
      [
        'submitted job j1',
        'job j1 queued · waiting for an executor',
        'job j1 running 50% · 500 B of 1.0 KB · 80 rows',
        'job j1 succeeded: 168 rows, 1 columns summed',
        '',
      ].join('\n'),
    );
    // Followed on the event stream: not one GET of the job.
    expect(asked()).toEqual(['POST /api/v1/jobs', 'GET /api/v1/events?job=j1']);
    expect(requests[1].headers.accept).toMatch(/^text\/event-stream/);
  });

  it('--wait resumes a stream cut short with Last-Event-ID', async () => {
    events = { served: true, cutAfter: 1 };
    const first = eventSeq;
    script = [job({ status: 'running', progress: { bytesRead: 1, bytesTotal: 2, rows: 1 } }), job({ status: 'succeeded', result: { rows: 1, columns: [] } })];
    const run = await decisum(['submit', 'data.csv', '--wait', '--url', url]);
    expect(run.code).toBe(0);
    expect(asked()).toEqual(['POST /api/v1/jobs', 'GET /api/v1/events?job=j1', 'GET /api/v1/events?job=j1']);
    expect(requests[1].headers['last-event-id']).toBeUndefined();
    expect(requests[2].headers['last-event-id']).toBe(`1-${first}`);
  });

  it('--wait against an API without the event stream waits on the job (?wait=) instead of polling', async () => {
    events = { served: false };
    script = [job({ status: 'running', progress: { bytesRead: 1, bytesTotal: 2, rows: 1 } }), job({ status: 'succeeded', result: { rows: 1, columns: [] } })];
    const run = await decisum(['submit', 'data.csv', '--wait', '--url', url]);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('job j1 running 50%');
    expect(asked()).toEqual(['POST /api/v1/jobs', 'GET /api/v1/events?job=j1', 'GET /api/v1/jobs/j1?wait=30', 'GET /api/v1/jobs/j1?wait=30']);
  });

  it('--quiet leaves stderr to errors', async () => {
    script = [job({ status: 'running' }), job({ status: 'succeeded', result: { rows: 1, columns: [] } })];
    const run = await decisum(['submit', 'data.csv', '-w', '-q', '--url', url]);
    expect(run).toEqual({ code: 0, stdout: 'column  index  count  sum\n', stderr: '' });
  });

  it('submit --wait on a terminal draws a bar with the percent, rows/s and the time left, in place', async () => {
    script = [
      job({ status: 'running', progress: { bytesRead: 100, bytesTotal: 1000, rows: 10 } }),
      job({ status: 'running', progress: { bytesRead: 400, bytesTotal: 1000, rows: 40 } }),
      job({ status: 'running', progress: { bytesRead: 700, bytesTotal: 1000, rows: 70 } }),
      job({ status: 'succeeded', result: { rows: 100, columns: [] } }),
    ];
    const { code, output } = await onTerminal(['submit', 'data.csv', '--wait', '--url', url]);
    expect(code).toBe(0);
    expect(output).toContain('\r\x1b[K[##------------------]  10% running · 100 B of 1.0 KB · 10 rows');
    expect(output).toContain('\r\x1b[K[########------------]  40% running · 400 B of 1.0 KB · 40 rows · ');
    expect(output).toMatch(/40 rows · \d+ rows\/s · \d+ s left/);
    expect(output).toContain('job j1 succeeded: 100 rows');
    expect(output).not.toContain('job j1 running'); // the plain lines are for logs, not terminals
  });

  it('submit --wait exits 1 for a failed job and names its code, row and column', async () => {
    script = [job({ status: 'failed', error: { code: 'NON_NUMERIC', message: '"abc" is not a number', row: 12, column: 'col10' } })];
    const run = await decisum(['submit', 'data.csv', '--wait', '--url', url]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('job j1 failed: NON_NUMERIC at row 12, column col10: "abc" is not a number\n');
    const json = await decisum(['status', 'j1', '--wait', '--json', '--url', url]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'failed', error: { code: 'NON_NUMERIC', row: 12 } });
  });

  it('status prints the job for people, exit 0 whatever its state', async () => {
    script = [job({ status: 'running', attempts: 1, progress: { bytesRead: 250, bytesTotal: 1000, rows: 40 } })];
    const run = await decisum(['status', 'j1', '--url', url]);
    expect(run).toMatchObject({ code: 0 });
    expect(run.stdout).toMatch(/^id +j1\nstatus +running\nfile +data\.csv\n/);
    expect(run.stdout).toMatch(/^progress +25% · 250 B of 1\.0 KB · 40 rows$/m);
  });

  it('turns an HTTP error into exit 3 with the problem code and detail', async () => {
    const run = await decisum(['status', 'nope', '--url', url]);
    expect(run).toEqual({ code: 3, stdout: '', stderr: 'decisum status: GET /api/v1/jobs/nope answered 404 JOB_NOT_FOUND: no job /api/v1/jobs/nope\n' });
    const html = await decisum(['status', 'teapot', '--url', url]);
    expect(html.code).toBe(3);
    expect(html.stderr).toBe('decisum status: GET /api/v1/jobs/teapot answered 502: Bad Gateway\n');
  });

  it('cancel sends DELETE and prints the job state; a finished job is exit 3 JOB_FINISHED', async () => {
    expect(await decisum(['cancel', 'j1', '--url', url])).toEqual({ code: 0, stdout: 'j1 cancelled\n', stderr: '' });
    expect(requests[0]).toMatchObject({ method: 'DELETE', url: '/api/v1/jobs/j1' });
    const json = await decisum(['cancel', 'j1', '--json', '--url', url]);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: 'j1', status: 'cancelled' });
    const done = await decisum(['cancel', 'done', '--url', url]);
    expect(done).toEqual({
      code: 3,
      stdout: '',
      stderr: 'decisum cancel: DELETE /api/v1/jobs/done answered 409 JOB_FINISHED: job done already succeeded; only queued or running jobs can be cancelled\n',
    });
  });

  it('list prints a page as a table, and on stderr the command for the next one', async () => {
    const run = await decisum(['list', '-n', '5', '--url', url]);
    expect(run).toMatchObject({ code: 0 });
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^id +status +created +outcome +file$/);
    expect(lines.slice(1).map((l) => l.split(/ +/)[0])).toEqual(['h12', 'h11', 'h10', 'h9', 'h8']);
    expect(lines[1]).toMatch(/^h12 +succeeded +2026-11-25T00:00:12Z +12 rows +data\.csv$/);
    expect(run.stderr).toBe('more jobs: decisum list --cursor 8 --limit 5 (or --all)\n');
    expect(requests[0].url).toBe('/api/v1/jobs?limit=5');

    const next = await decisum(['list', '-n', '5', '-c', '8', '-s', 'succeeded', '--url', url]);
    expect(next.stdout.trimEnd().split('\n').slice(1).map((l) => l.split(/ +/)[0])).toEqual(['h7', 'h6', 'h5', 'h4', 'h3']);
    expect(requests[1].url).toBe('/api/v1/jobs?status=succeeded&limit=5&cursor=8');
    expect(next.stderr).toBe('more jobs: decisum list --cursor 3 --status succeeded --limit 5 (or --all)\n');
  });

  it('list --all follows every page; --json prints the page, or every job with --all', async () => {
    const all = await decisum(['list', '--all', '-n', '5', '--url', url]);
    expect(all.code).toBe(0);
    expect(all.stderr).toBe('');
    expect(all.stdout.trimEnd().split('\n').slice(1).map((l) => l.split(/ +/)[0])).toEqual(history.map((j) => j.id));
    expect(requests.map((r) => r.url)).toEqual(['/api/v1/jobs?limit=5', '/api/v1/jobs?limit=5&cursor=8', '/api/v1/jobs?limit=5&cursor=3']);

    const page = JSON.parse((await decisum(['list', '-n', '5', '--json', '--url', url])).stdout) as { jobs: Job[]; nextCursor: string };
    expect(page.nextCursor).toBe('8');
    expect(page.jobs).toHaveLength(5);
    const every = JSON.parse((await decisum(['list', '-a', '-j', '--url', url])).stdout) as { jobs: Job[] };
    expect(every.jobs.map((j) => j.id)).toEqual(history.map((j) => j.id));

    const none = await decisum(['list', '-s', 'failed', '--url', url]);
    expect(none).toEqual({ code: 0, stdout: '', stderr: 'no jobs failed\n' });
  });

  it('active prints the count; --json the object', async () => {
    expect(await decisum(['active', '--url', url])).toEqual({ code: 0, stdout: '3 active (1 queued, 2 running)\n', stderr: '' });
    const json = await decisum(['active', '--json', '--url', url]);
    expect(JSON.parse(json.stdout)).toEqual({ active: 3, queued: 1, running: 2 });
  });

  it('upload streams a file or stdin to the files API, never replacing a file unless --force', async () => {
    const file = path.join(scratch, 'my data.csv');
    fs.writeFileSync(file, 'a,b\n1,2\n');
    const run = await decisum(['upload', file, 's3://decisum/in/', '--url', url]);
    expect(run).toMatchObject({ code: 0 });
    expect(run.stdout).toBe('s3://decisum/in/my data.csv\n');
    expect(requests[0]).toMatchObject({ method: 'PUT', url: '/api/v1/files/s3/decisum/in/my%20data.csv', body: 'a,b\n1,2\n' });
    expect(requests[0].headers).toMatchObject({ 'content-length': '8', 'if-none-match': '*' });
    const local = await decisum(['upload', file, '--url', url]);
    expect(local.stdout).toBe('my data.csv\n');
    expect(requests[1].url).toBe('/api/v1/files/local/my%20data.csv');
    const piped = await decisum(['upload', '-', 'file:reports/x.csv', '--json', '--url', url], { input: 'x\n1\n' });
    expect(JSON.parse(piped.stdout)).toMatchObject({ location: 'reports/x.csv', size: 4 });
    expect(requests[2]).toMatchObject({ url: '/api/v1/files/local/reports/x.csv', body: 'x\n1\n' });

    const refused = await decisum(['upload', file, 'exists.csv', '--url', url]);
    expect(refused).toEqual({ code: 3, stdout: '', stderr: 'decisum upload: exists.csv already exists on the server; pass --force to replace it\n' });
    const forced = await decisum(['upload', file, 'exists.csv', '-f', '--url', url]);
    expect(forced.code).toBe(0);
    expect(requests[4].headers['if-none-match']).toBeUndefined();
  });

  it('download writes a file (its name by default), or stdout with -, and replaces one only with --force', async () => {
    const dir = fs.mkdtempSync(path.join(scratch, 'dl-'));
    const run = await decisum(['download', 'reports/a.csv', '--url', url], { cwd: dir });
    expect(run).toEqual({ code: 0, stdout: '', stderr: 'downloaded 8 bytes to a.csv\n' });
    expect(fs.readFileSync(path.join(dir, 'a.csv'), 'utf8')).toBe('a,b\n1,2\n');

    fs.writeFileSync(path.join(dir, 'a.csv'), 'mine\n');
    const refused = await decisum(['download', 'reports/a.csv', '--url', url], { cwd: dir });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^decisum download: a\.csv exists; pass --force to replace it\n/);
    expect(fs.readFileSync(path.join(dir, 'a.csv'), 'utf8')).toBe('mine\n');
    expect((await decisum(['download', 'reports/a.csv', 'a.csv', '--force', '--url', url], { cwd: dir })).code).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'a.csv'), 'utf8')).toBe('a,b\n1,2\n');

    expect(await decisum(['download', 'reports/a.csv', '-', '-u', url])).toEqual({ code: 0, stdout: 'a,b\n1,2\n', stderr: 'downloaded 8 bytes\n' });
    expect(fs.readdirSync(dir)).toEqual(['a.csv']);
  });

  it('download: a missing file is exit 3 with the API\'s words; a cut download exit 3, leaving no file behind', async () => {
    const dir = fs.mkdtempSync(path.join(scratch, 'dl-'));
    const missing = await decisum(['download', 'nope.csv', '--url', url], { cwd: dir });
    expect(missing).toEqual({ code: 3, stdout: '', stderr: 'decisum download: GET /api/v1/files/local/nope.csv answered 404 FILE_NOT_FOUND: nope.csv does not exist\n' });
    const cut = await decisum(['download', 'cut.csv', '--url', url], { cwd: dir });
    expect(cut.code).toBe(3);
    expect(cut.stderr).toMatch(/^decisum download: the download of cut\.csv (was cut short|ended after 10 of 1000 bytes)/);
    expect(fs.readdirSync(dir)).toEqual([]);
    const toStdout = await decisum(['download', 'cut.csv', '-', '--url', url]);
    expect(toStdout.code).toBe(3);
    expect(toStdout.stderr).toMatch(/^decisum download: the download of cut\.csv was cut short: ECONNRESET\n$/);
  });
});

describe('decisum CLI: end to end against the real API and an executor', () => {
  let stack: Stack;
  const cli = (...args: string[]) => decisum([...args, '--url', stack.url]);

  beforeAll(async () => {
    stack = await startStack({ executors: 1 });
  });
  afterAll(() => stack.stop());

  it('uploads the reference sample, then submit --wait prints its five sums', async () => {
    const upload = await cli('upload', SAMPLE, 'in/');
    expect(upload).toMatchObject({ code: 0, stdout: 'in/sample.csv\n' });
    expect(fs.readFileSync(path.join(stack.dataDir, 'in', 'sample.csv'))).toEqual(fs.readFileSync(SAMPLE));

    const run = await cli('submit', 'in/sample.csv', '--wait');
    expect(run.stderr).toMatch(/succeeded: 168 rows, 5 columns summed/);
    expect(run).toMatchObject({ code: 0 });
    expect(run.stdout.trimEnd().split('\n')).toEqual([
      'column  index  count  sum',
      'col0    1      168    87.231379072549653118',
      'col10   11     168    85.5182181544556908975',
      'col20   21     168    83.5099565716517882532',
      'col30   31     168    89.8093183867067968988',
      'col40   41     168    84.058402235531208060',
    ]);
  });

  it('refuses to upload over a stored file without --force, and downloads it back byte for byte', async () => {
    const again = await cli('upload', SAMPLE, 'in/');
    expect(again).toEqual({ code: 3, stdout: '', stderr: 'decisum upload: in/sample.csv already exists on the server; pass --force to replace it\n' });
    const other = path.join(scratch, 'other.csv');
    fs.writeFileSync(other, 'a\n1\n');
    expect((await cli('upload', other, 'in/sample.csv', '--force')).code).toBe(0);
    expect(fs.readFileSync(path.join(stack.dataDir, 'in', 'sample.csv'), 'utf8')).toBe('a\n1\n');
    expect((await cli('upload', SAMPLE, 'in/', '-f')).code).toBe(0);

    const out = path.join(scratch, 'back.csv');
    expect((await cli('download', 'in/sample.csv', out)).code).toBe(0);
    expect(fs.readFileSync(out)).toEqual(fs.readFileSync(SAMPLE));
  });

  it('submit then status --wait --json give the job as the API has it; list and cancel see it', async () => {
    stack.writeFile('ints.csv', 'a,b\n1,2\n3,4\n');
    const submitted = await cli('submit', 'file:ints.csv');
    // stderr in the failure message, should it fail.
    expect(submitted).toMatchObject({ code: 0, stderr: expect.not.stringContaining('decisum submit:') });
    const id = submitted.stdout.trim();
    const run = await cli('status', id, '--wait', '--json');
    expect(run).toMatchObject({ code: 0 });
    expect(JSON.parse(run.stdout)).toMatchObject({ id, status: 'succeeded', result: { rows: 2, columns: [{ name: 'a', sum: '4' }] } });
    const human = await cli('status', id);
    expect(human.stdout).toMatch(/^status +succeeded$/m);

    const list = await cli('list', '--status', 'succeeded', '--all');
    expect(list.stdout.split('\n').find((l) => l.startsWith(id))).toMatch(/ succeeded +\S+ +2 rows +ints\.csv$/);
    const cancel = await cli('cancel', id);
    expect(cancel.code).toBe(3);
    expect(cancel.stderr).toMatch(/answered 409 JOB_FINISHED: job \S+ already succeeded/);
  });

  it('exits 1 for a job that fails on bad data, naming the code, row and column', async () => {
    stack.writeFile('bad.csv', 'a,b\n1,2\nx,4\n');
    const run = await cli('submit', 'bad.csv', '--wait');
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/failed: NON_NUMERIC: row 3, column a: "[^"]*" is not a number\n/);
  });

  it('generate-csv | upload - | submit --wait: sums a generated file exactly', async () => {
    const generated = await decisum(['generate-csv', '--rows', '2000', '--cols', '25', '--kind', 'int', '--seed', '3']);
    const upload = await decisum(['upload', '-', 'gen/ints.csv', '--url', stack.url], { input: generated.stdout });
    expect(upload).toMatchObject({ code: 0, stdout: 'gen/ints.csv\n' });
    const run = await cli('submit', 'gen/ints.csv', '--wait', '--json');
    expect(run).toMatchObject({ code: 0 });
    const rows = parseCsv(generated.stdout).slice(1);
    const expected = [0, 10, 20].map((i) => ({ name: `col${i + 1}`, index: i, count: 2000, sum: String(rows.reduce((t, r) => t + Number(r[i]), 0)) }));
    const job = JSON.parse(run.stdout) as Job;
    expect(job.result?.rows).toBe(2000);
    expect(job.result?.columns.map(({ name, index, count, sum }) => ({ name, index, count, sum }))).toEqual(expected);
  });

  it('exits 3 when the API refuses the submission, and active reports nothing in work', async () => {
    const missing = await cli('submit', 'no-such.csv');
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/answered 404 FILE_NOT_FOUND/);
    const outside = await cli('submit', '../etc/passwd');
    expect(outside.stderr).toMatch(/answered 400 PATH_OUTSIDE_DATA_DIR/);
    const active = await cli('active', '--json');
    expect(JSON.parse(active.stdout)).toEqual({ active: 0, queued: 0, running: 0 });
  });
});
