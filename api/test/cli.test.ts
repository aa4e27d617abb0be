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
import { startStack, type Stack } from '../../test/support/stack';

/**
 * The CLI as a shell sees it: the bin shim run as a child process on the compiled api/dist, its
 * exit codes, stdout for data and stderr for messages.
 */

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'api', 'bin', 'decisum.js');

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

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Asynchronous on purpose: the fake API below serves from this same process. */
async function decisum(args: string[], options: { env?: Record<string, string>; input?: string } = {}): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin.end(options.input ?? '');
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/** A port nothing listens on: bound and released. */
async function closedPort(): Promise<number> {
  const server = http.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

function job(overrides: Partial<Job>): Job {
  return {
    id: 'j1',
    status: 'queued',
    file: 'data.csv',
    options: { step: 10, offset: 0 },
    createdAt: '2026-11-25T00:00:00.000Z',
    attempts: 0,
    progress: { bytesRead: 0, bytesTotal: 1000, rows: 0 },
    ...overrides,
  };
}

describe('decisum CLI: usage', () => {
  it('prints the help on stdout and exits 0', async () => {
    const run = await decisum(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^decisum: sum every 10th column/);
    for (const command of ['generate-csv', 'submit', 'status', 'active', 'upload']) { expect(run.stdout).toContain(`decisum ${command}`); }
    expect(run.stderr).toBe('');
    expect((await decisum(['submit', '--help'])).code).toBe(0);
  });

  it.each([
    [[], /no command given/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['submit'], /usage: decisum submit LOCATION/],
    [['submit', 'a.csv', 'b.csv'], /usage: decisum submit LOCATION/],
    [['submit', 'a.csv', '--step', '0'], /--step must be a whole number of at least 1, not "0"/],
    [['submit', 'a.csv', '--offset', '-1'], /Option '--offset' argument is ambiguous/],
    [['submit', 'a.csv', '--offset=-1'], /--offset must be a whole number, not "-1"/],
    [['submit', 'a.csv', '--delimiter', 'x'], /--delimiter must be one of/],
    [['submit', 'a.csv', '--frob'], /Unknown option '--frob'/],
    [['status'], /usage: decisum status ID/],
    [['active', 'extra'], /usage: decisum active/],
    [['upload'], /usage: decisum upload FILE \[LOCATION\]/],
    [['upload', 'no-such-file.csv', 'x.csv'], /cannot read no-such-file.csv: ENOENT/],
    [['upload', '-'], /needs a LOCATION/],
    [['upload', 'package.json', '/etc/x.csv'], /LOCATION \/etc\/x\.csv is absolute/],
    [['generate-csv', '--cols', '3'], /needs --rows N and --cols M/],
    [['generate-csv', '--rows', '3', '--cols', '3', '--kind', 'float'], /--kind must be one of sample, int, decimal/],
    [['active', '--url', 'not a url'], /is not a URL/],
    [['active', '--url', 'ftp://example.com'], /must be an http/],
  ])('%j is a usage error: exit 2, a message on stderr, nothing on stdout', async (args, message) => {
    const run = await decisum(args);
    expect(run).toEqual({ code: 2, stdout: '', stderr: expect.stringMatching(message) });
    expect(run.stderr).toMatch(/^decisum: .*\nRun decisum --help for usage\.\n$/);
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
    const decimals = await decisum(['generate-csv', '--rows', '3', '--cols', '4', '--kind', 'decimal']);
    const cells = parseCsv(decimals.stdout).slice(1).flat();
    expect(cells).toHaveLength(12);
    expect(cells.every((c) => /^-?\d+\.\d\d$/.test(c))).toBe(true);
  });

  it('--kind sample writes the reference sample shape: double-encoded lines, an index column, col0…', async () => {
    const fixture = fs.readFileSync(SAMPLE, 'utf8');
    const reference = parseDoubleEncoded(fixture);
    const columns = reference[0].length - 1;
    const run = await decisum(['generate-csv', '--rows', '4', '--cols', String(columns)]);
    expect(run.code).toBe(0);
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
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-gen-'));
    try {
      const out = path.join(dir, 'g.csv');
      const a = await decisum(['generate-csv', '--rows', '50', '--cols', '7', '--seed', '9', '--kind', 'decimal']);
      const b = await decisum(['generate-csv', '--rows', '50', '--cols', '7', '--seed', '9', '--kind', 'decimal', '--out', out]);
      const c = await decisum(['generate-csv', '--rows', '50', '--cols', '7', '--seed', '10', '--kind', 'decimal']);
      expect(b).toEqual({ code: 0, stdout: '', stderr: '' });
      expect(fs.readFileSync(out, 'utf8')).toBe(a.stdout);
      expect(c.stdout).not.toBe(a.stdout);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
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
  it('exits 3 and says so when nothing listens at the URL', async () => {
    const port = await closedPort();
    const run = await decisum(['active', '--url', `http://127.0.0.1:${port}`]);
    expect(run.code).toBe(3);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      `decisum: cannot reach http://127.0.0.1:${port}: ECONNREFUSED; is the API running? Set --url or DECISUM_URL\n`,
    );
  });

  it('takes the URL from DECISUM_URL, with --url before the command winning over it', async () => {
    const port = await closedPort();
    const fromEnv = await decisum(['status', 'abc'], { env: { DECISUM_URL: `http://127.0.0.1:${port}` } });
    expect(fromEnv.code).toBe(3);
    expect(fromEnv.stderr).toContain(`cannot reach http://127.0.0.1:${port}`);
    const other = await closedPort();
    const flag = await decisum(['--url', `http://127.0.0.1:${other}`, 'status', 'abc'], {
      env: { DECISUM_URL: `http://127.0.0.1:${port}` },
    });
    expect(flag.stderr).toContain(`cannot reach http://127.0.0.1:${other}`);
  });
});

describe('decisum CLI: against a scripted API', () => {
  let server: http.Server;
  let url: string;
  /** What the fake API answers next for GET /api/v1/jobs/j1: the last one repeats. */
  let script: Job[] = [];
  const requests: { method: string; url: string; body: string; headers: http.IncomingHttpHeaders }[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => {
        requests.push({ method: req.method!, url: req.url!, body, headers: req.headers });
        const send = (status: number, value: unknown, type = 'application/json') =>
          res.writeHead(status, { 'content-type': type }).end(JSON.stringify(value));
        if (req.method === 'POST' && req.url === '/api/v1/jobs') { return send(202, job({})); }
        if (req.method === 'GET' && req.url === '/api/v1/jobs/active') { return send(200, { active: 3, queued: 1, running: 2 }); }
        if (req.method === 'GET' && req.url === '/api/v1/jobs/j1') { return send(200, script.length > 1 ? script.shift() : script[0]); }
        if (req.method === 'PUT' && req.url?.startsWith('/api/v1/files/')) {
          return send(201, { location: decodeURIComponent(req.url.replace(/^\/api\/v1\/files\/(local\/|s3\/)/, (_, k: string) => (k === 's3/' ? 's3://' : ''))), size: Buffer.byteLength(body), modified: '2026-11-25T00:00:00.000Z' });
        }
        if (req.url === '/api/v1/jobs/teapot') { return res.writeHead(502).end('<html>bad gateway</html>'); }
        return send(404, { type: 'about:blank', title: 'Not Found', status: 404, detail: `no job ${req.url}`, code: 'JOB_NOT_FOUND' }, 'application/problem+json');
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));
  beforeEach(() => {
    requests.length = 0;
  });

  it('submit sends the options and prints the job id; --json prints the job', async () => {
    const run = await decisum(['submit', 's3://b/k.csv', '--step', '5', '--offset', '2', '--delimiter', 'tab', '--no-header', '--idempotency-key', 'k1', '--url', url]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('j1\n');
    expect(run.stderr).toContain('submitted job j1');
    expect(JSON.parse(requests[0].body)).toEqual({ file: 's3://b/k.csv', step: 5, offset: 2, delimiter: '\t', header: false });
    expect(requests[0].headers['idempotency-key']).toBe('k1');
    const json = await decisum(['submit', 'data.csv', '--json', '--url', url]);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: 'j1', status: 'queued' });
  });

  it('submit --wait follows the job to success and prints the sums as a table', async () => {
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
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('column  index  count  sum\ncol0    1      168    87.231379072549653118\n');
    expect(run.stderr).toContain('job j1 succeeded: 168 rows, 1 columns summed');
    // Not a terminal: no progress bar escapes in the captured stderr.
    expect(run.stderr).not.toContain('\x1b[');
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
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^id +j1\nstatus +running\nfile +data\.csv\n/);
    expect(run.stdout).toMatch(/progress +25% 250 B of 1\.0 KB, 40 rows/);
  });

  it('turns an HTTP error into exit 3 with the problem code and detail', async () => {
    const run = await decisum(['status', 'nope', '--url', url]);
    expect(run).toEqual({ code: 3, stdout: '', stderr: 'decisum: GET /api/v1/jobs/nope answered 404 JOB_NOT_FOUND: no job /api/v1/jobs/nope\n' });
    const html = await decisum(['status', 'teapot', '--url', url]);
    expect(html.code).toBe(3);
    expect(html.stderr).toBe('decisum: GET /api/v1/jobs/teapot answered 502: Bad Gateway\n');
  });

  it('active prints the count; --json the object', async () => {
    expect(await decisum(['active', '--url', url])).toEqual({ code: 0, stdout: '3 active (1 queued, 2 running)\n', stderr: '' });
    const json = await decisum(['active', '--json', '--url', url]);
    expect(JSON.parse(json.stdout)).toEqual({ active: 3, queued: 1, running: 2 });
  });

  it('upload streams a file or stdin to the files API and prints where it went', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-cli-'));
    try {
      const file = path.join(dir, 'my data.csv');
      fs.writeFileSync(file, 'a,b\n1,2\n');
      const run = await decisum(['upload', file, 's3://decisum/in/', '--url', url]);
      expect(run.code).toBe(0);
      expect(run.stdout).toBe('s3://decisum/in/my data.csv\n');
      expect(requests[0]).toMatchObject({ method: 'PUT', url: '/api/v1/files/s3/decisum/in/my%20data.csv', body: 'a,b\n1,2\n' });
      expect(requests[0].headers['content-length']).toBe('8');
      const local = await decisum(['upload', file, '--url', url]);
      expect(local.stdout).toBe('my data.csv\n');
      expect(requests[1].url).toBe('/api/v1/files/local/my%20data.csv');
      const piped = await decisum(['upload', '-', 'file:reports/x.csv', '--json', '--url', url], { input: 'x\n1\n' });
      expect(JSON.parse(piped.stdout)).toMatchObject({ location: 'reports/x.csv', size: 4 });
      expect(requests[2]).toMatchObject({ url: '/api/v1/files/local/reports/x.csv', body: 'x\n1\n' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
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
    expect(run.code).toBe(0);
    expect(run.stdout.trimEnd().split('\n')).toEqual([
      'column  index  count  sum',
      'col0    1      168    87.231379072549653118',
      'col10   11     168    85.5182181544556908975',
      'col20   21     168    83.5099565716517882532',
      'col30   31     168    89.8093183867067968988',
      'col40   41     168    84.058402235531208060',
    ]);
  });

  it('submit then status --wait --json give the job as the API has it', async () => {
    stack.writeFile('ints.csv', 'a,b\n1,2\n3,4\n');
    const submitted = await cli('submit', 'file:ints.csv');
    expect(submitted.code).toBe(0);
    const id = submitted.stdout.trim();
    const run = await cli('status', id, '--wait', '--json');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ id, status: 'succeeded', result: { rows: 2, columns: [{ name: 'a', sum: '4' }] } });
    const human = await cli('status', id);
    expect(human.stdout).toMatch(/^status +succeeded$/m);
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
    expect(run.code).toBe(0);
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
