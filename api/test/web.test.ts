import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { Job } from '@decisum/shared';
import { SAMPLE, SAMPLE_SUMS as SAMPLE_COLUMNS } from '../../test/support/sample';
import { startStack, type Stack } from '../../test/support/stack';
import { waitFor } from '../../test/support/wait';

/** Debian's chromium; playwright-core never downloads a browser. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** `UPDATE_SCREENSHOTS=1 npx jest api/test/web.test.ts` refreshes the README's pictures; otherwise they go to a temp folder. */
const SHOTS = process.env.UPDATE_SCREENSHOTS ? path.join(__dirname, '..', '..', 'docs') : path.join(os.tmpdir(), 'decisum-screenshots');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const SAMPLE_SUMS = SAMPLE_COLUMNS.map((c) => c.sum);

// Strings, not functions, for code run in the page: the tests compile without the DOM's types.
const RESULT_IN_VIEW_AND_FOCUSED = `(() => {
  const r = document.getElementById('result').getBoundingClientRect();
  // The table starts in the upper half of the screen: on a phone that holds only once the scroll to it has run.
  return r.height > 0 && r.top >= 0 && r.top < window.innerHeight / 2 && document.activeElement.id === 'detail-title';
})()`;

let browser: Browser;
let stack: Stack;
let scratch: string;

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) { throw new Error(`no browser at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`); }
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-web-'));
  fs.mkdirSync(SHOTS, { recursive: true });
  [stack, browser] = await Promise.all([
    startStack({ executors: 1 }),
    chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] }),
  ]);
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  if (scratch) { fs.rmSync(scratch, { recursive: true, force: true }); }
});

/** A page in its own context, collecting the errors the page itself reports. */
async function open(url: string, options: Parameters<Browser['newContext']>[0]): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  // Playwright's string predicates (waitForFunction) are evals, which the page's CSP forbids; the CSP itself is checked in web-security.test.ts.
  const context = await browser.newContext({ bypassCSP: true, ...options });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (msg) => {
    // A 404 or 412 answer is logged by the browser itself; those are expected here.
    if (msg.type() === 'error' && !/status of 4\d\d/.test(msg.text())) { errors.push(msg.text()); }
  });
  await page.goto(url);
  return { context, page, errors };
}

function write(name: string, content: string | Buffer): string {
  const file = path.join(scratch, name);
  fs.writeFileSync(file, content);
  return file;
}

async function uploadThroughPage(page: Page, file: string, expectLocation: string) {
  await page.setInputFiles('#upload', file);
  await page.locator('#upload-status.ok', { hasText: `Uploaded ${expectLocation} ` }).waitFor();
  expect(await page.inputValue('#location')).toBe(expectLocation);
  // Wait on the state, not on time: the listing is reloaded after the upload and selects the new file.
  await page.waitForFunction(`document.getElementById('stored').value === ${JSON.stringify(expectLocation)}`);
}

describe('the web page at 1280×800, in headless Chromium', () => {
  let page: Page;
  let errors: string[];

  beforeAll(async () => {
    ({ page, errors } = await open(stack.url, { viewport: DESKTOP, acceptDownloads: true }));
  });
  afterAll(() => page.context().close());

  it('serves the page with its scripts and styles, and shows the active count', async () => {
    await expect(page.title()).resolves.toContain('decisum');
    await page.waitForFunction("document.getElementById('count-active').textContent === '0'");
    expect(await page.locator('#jobs-empty').isVisible()).toBe(true);
    await page.locator('#stored option', { hasText: 'No files stored yet' }).waitFor({ state: 'attached' });
  });

  it('uploads the reference sample, sums it, and brings the five sums into view with focus', async () => {
    await uploadThroughPage(page, SAMPLE, 'uploads/sample.csv');
    expect(fs.readFileSync(path.join(stack.dataDir, 'uploads', 'sample.csv'))).toEqual(fs.readFileSync(SAMPLE));
    expect(await page.locator('#stored optgroup[label="Data folder"] option').allTextContents()).toEqual([expect.stringMatching(/^uploads\/sample\.csv {2}· {2}198 KB {2}· /)]);

    await page.click('#submit');
    await page.waitForFunction(RESULT_IN_VIEW_AND_FOCUSED, undefined, { timeout: 30_000 });
    expect(await page.textContent('#detail-title')).toBe('Result');
    const table = page.locator('#result');
    expect(await table.locator('tbody td.sum').allTextContents()).toEqual(SAMPLE_SUMS);
    expect(await table.locator('tbody th').allTextContents()).toEqual(['col0', 'col10', 'col20', 'col30', 'col40']);
    expect(await page.textContent('#result-caption')).toContain('168 rows');
    await page.locator('#jobs li[data-status="succeeded"]').first().waitFor();
    expect(await page.locator('#jobs .bar.succeeded').first().getAttribute('aria-valuenow')).toBe('100');
  });

  it('downloads the result as CSV, and copies it as JSON', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-csv')]);
    expect(download.suggestedFilename()).toBe('sample-sums.csv');
    const csv = fs.readFileSync(await download.path(), 'utf8');
    expect(csv.split('\r\n')).toEqual([
      'column,index,sum,value,count',
      ...SAMPLE_COLUMNS.map((c) => `${c.name},${c.index},${c.sum},${Number(c.sum)},${c.count}`),
      '',
    ]);

    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: stack.url });
    await page.click('#copy');
    await page.locator('#copy-status', { hasText: 'Copied' }).waitFor();
    const copied = JSON.parse(await page.evaluate<string>('navigator.clipboard.readText()')) as { rows: number; columns: { sum: string }[] };
    expect(copied.rows).toBe(168);
    expect(copied.columns.map((c) => c.sum)).toEqual(SAMPLE_SUMS);
  });

  it('says once what is wrong with a file, and where', async () => {
    await uploadThroughPage(page, write('prices.csv', 'price,qty\n1.5,2\nabc,3\n'), 'uploads/prices.csv');
    await page.click('#submit');
    const error = page.locator('#detail-error');
    await error.waitFor({ state: 'visible', timeout: 30_000 });
    expect(await page.textContent('#detail-title')).toBe('The job failed');
    expect(await error.locator('.message').textContent()).toBe('row 3, column price: "abc" is not a number');
    expect(await error.locator('.code').textContent()).toBe('code NON_NUMERIC');
    expect(((await error.textContent()) ?? '').match(/not a number/g)).toHaveLength(1);
    expect(await page.locator('#result-wrap').isHidden()).toBe(true);
    expect(await page.locator('#download-csv').isHidden()).toBe(true);
  });

  it('says a refused submission once, in the server\'s words', async () => {
    const alert = page.locator('#form-error');
    await page.fill('#location', '../../etc/passwd');
    await page.click('#submit');
    await alert.waitFor({ state: 'visible' });
    expect(await alert.locator('.message').textContent()).toBe('../../etc/passwd is outside DATA_DIR: give a path relative to it');

    await page.fill('#location', 'nope.csv');
    expect(await alert.isHidden()).toBe(true); // typing clears it
    await page.click('#submit');
    await page.locator('#form-error .message', { hasText: 'nope.csv' }).waitFor();
    expect(await alert.locator('.message').textContent()).toBe('nope.csv does not exist');
    expect(await alert.locator('.code').textContent()).toBe('code FILE_NOT_FOUND');
  });

  it('shows a job again when picked from the history; takes the desktop screenshot', async () => {
    await page.selectOption('#stored', 'uploads/sample.csv');
    expect(await page.inputValue('#location')).toBe('uploads/sample.csv');
    expect(await page.locator('#form-error').isHidden()).toBe(true);
    await page.locator('#jobs li[data-status="succeeded"] button').first().click();
    await page.waitForFunction(RESULT_IN_VIEW_AND_FOCUSED);
    expect(await page.locator('#jobs li').count()).toBe(2);
    await page.evaluate('window.scrollTo(0, 0)');
    await page.screenshot({ path: path.join(SHOTS, 'page-desktop.png') });
    expect(fs.statSync(path.join(SHOTS, 'page-desktop.png')).size).toBeGreaterThan(10_000);
  });

  it('asks before replacing an upload: cancel keeps it, keep both saves a new name, replace overwrites', async () => {
    const stored = path.join(stack.dataDir, 'uploads', 'prices.csv');
    const first = fs.readFileSync(stored, 'utf8');
    const second = write('prices.csv', 'price,qty\n2,2\n');

    await page.setInputFiles('#upload', second);
    await page.locator('#conflict').waitFor({ state: 'visible' });
    expect(await page.textContent('#conflict-text')).toMatch(/^uploads\/prices\.csv already exists \(\d+ B, changed .+\)\.$/);
    expect(await page.textContent('#conflict-keep')).toBe('Keep both: save as prices-2.csv');
    expect(await page.evaluate('document.activeElement.id')).toBe('conflict-keep');
    await page.keyboard.press('Escape'); // as Cancel does
    await page.locator('#upload-status', { hasText: 'Not uploaded; uploads/prices.csv was left as it was.' }).waitFor();
    expect(await page.locator('#conflict').isHidden()).toBe(true);
    expect(fs.readFileSync(stored, 'utf8')).toBe(first);

    // The list of stored files reloads slowly after this upload: a file picked meanwhile is not ignored.
    await page.route('**/api/v1/files/**', async (route) => {
      if (route.request().method() === 'GET') { await new Promise((r) => setTimeout(r, 3_000)); }
      await route.fallback();
    });
    await page.setInputFiles('#upload', second);
    await page.click('#conflict-keep');
    await page.locator('#upload-status.ok', { hasText: 'uploads/prices-2.csv' }).waitFor();
    expect(fs.readFileSync(path.join(stack.dataDir, 'uploads', 'prices-2.csv'), 'utf8')).toBe('price,qty\n2,2\n');
    expect(fs.readFileSync(stored, 'utf8')).toBe(first);
    expect(await page.inputValue('#location')).toBe('uploads/prices-2.csv');

    await page.setInputFiles('#upload', second);
    await page.locator('#conflict-keep', { hasText: 'Keep both: save as prices-3.csv' }).waitFor();
    await page.click('#conflict-replace');
    await page.locator('#upload-status.ok', { hasText: 'Uploaded uploads/prices.csv' }).waitFor();
    await page.unrouteAll({ behavior: 'wait' });
    expect(fs.readFileSync(stored, 'utf8')).toBe('price,qty\n2,2\n');
    expect(errors).toEqual([]);
  });

  it('shows an upload\'s progress, and Stop leaves nothing stored', async () => {
    const big = write('big.csv', Buffer.alloc(3 * 1024 * 1024, 'a,1\n'));
    const cdp = await page.context().newCDPSession(page);
    // 256 KB/s: the 3 MB upload takes about 12 s, long enough to watch it move.
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 256 * 1024 });
    try {
      await page.setInputFiles('#upload', big);
      await page.waitForFunction("/Uploading uploads\\/big\\.csv: ([1-9]|[1-9][0-9])% · .* of 3\\.0 MB/.test(document.getElementById('upload-status').textContent)");
      const value = Number(await page.getAttribute('#upload-progress', 'value'));
      expect(value).toBeGreaterThan(0);
      expect(value).toBeLessThan(3 * 1024 * 1024);
      await page.waitForFunction("/ · \\d+ s left$/.test(document.getElementById('upload-status').textContent)");
      await page.click('#upload-stop');
      await page.locator('#upload-status', { hasText: 'Upload stopped; nothing was stored.' }).waitFor();
      expect(await page.locator('#uploading').isHidden()).toBe(true);
    } finally {
      await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    }
    expect(fs.existsSync(path.join(stack.dataDir, 'uploads', 'big.csv'))).toBe(false);
    // The server drops the part it had received once it sees the client go.
    await waitFor(() => (fs.readdirSync(path.join(stack.dataDir, 'uploads')).every((f) => f.endsWith('.csv')) ? true : undefined), {
      what: 'the partial upload to be removed',
    });
  });

  it('shows jobs submitted elsewhere as they come, and pages through the history past the first 20 jobs', async () => {
    stack.writeFile('tiny.csv', 'a\n1\n');
    const before = await page.locator('#jobs li').count();
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) {
      const res = await fetch(`${stack.url}/api/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ file: 'tiny.csv' }) });
      expect(res.status).toBe(202);
      ids.push(((await res.json()) as Job).id);
    }
    const total = before + 25;
    // Another client's jobs arrive on the event stream, and finish there: no reload, no poll.
    expect(await page.textContent('#jobs-updated')).toBe('live');
    await page.waitForFunction(`document.querySelectorAll('#jobs li').length === ${total}`);
    await page.waitForFunction(`${JSON.stringify(ids)}.every((id) => document.querySelector('#jobs li[data-status="succeeded"] button[data-id="' + id + '"]'))`, undefined, { timeout: 30_000 });

    // A fresh page reads the first page of history; the rest wait for the button.
    await page.reload();
    await page.waitForFunction(`document.querySelectorAll('#jobs li').length === 20 && !document.getElementById('jobs-more').hidden`);
    await page.click('#jobs-more');
    await page.waitForFunction(`document.querySelectorAll('#jobs li').length === ${total}`);
    expect(await page.locator('#jobs-more').isHidden()).toBe(true);
    const shown = await page.evaluate<string[]>("[...document.querySelectorAll('#jobs li button')].map((b) => b.dataset.id)");
    expect(new Set(shown).size).toBe(total);
    expect(errors).toEqual([]);
  });

  it('sends a bearer token on every kind of call once one is set (fetch, the upload\'s XHR and the event stream alike)', async () => {
    const seen: { method: string; url: string; authorization?: string }[] = [];
    const record = (req: { method(): string; url(): string; headers(): Record<string, string> }) => {
      const url = new URL(req.url()).pathname;
      if (url.startsWith('/api/v1/files/') || url === '/api/v1/events') { seen.push({ method: req.method(), url, authorization: req.headers().authorization }); }
    };
    page.on('request', record);
    // The same module instance app.js imported: the token prompt to come will call this.
    await page.evaluate("import('/api.js').then((m) => m.setToken('t0ken'))");
    try {
      await page.click('#refresh-files');
      await uploadThroughPage(page, write('token.csv', 'a\n1\n'), 'uploads/token.csv');
    } finally {
      page.off('request', record);
      await page.evaluate("import('/api.js').then((m) => m.setToken(undefined))");
    }
    // The stream reconnects with the new token at once (and resumes where it was).
    expect(seen.filter((r) => r.url === '/api/v1/events').map((r) => r.authorization)).toEqual(['Bearer t0ken']);
    expect(seen.filter((r) => r.url !== '/api/v1/events').map((r) => `${r.method} ${r.url} ${r.authorization}`)).toEqual([
      'GET /api/v1/files/local/ Bearer t0ken',
      'HEAD /api/v1/files/local/uploads/token.csv Bearer t0ken',
      'PUT /api/v1/files/local/uploads/token.csv Bearer t0ken',
      'GET /api/v1/files/local/ Bearer t0ken',
    ]);
  });
});

describe('the web page at 390×844 (a phone)', () => {
  let page: Page;
  let errors: string[];

  beforeAll(async () => {
    ({ page, errors } = await open(stack.url, { viewport: PHONE, deviceScaleFactor: 2, isMobile: true, hasTouch: true }));
  });
  afterAll(() => page.context().close());

  it('scrolls to the result and focuses it, and the whole table fits the screen', async () => {
    await page.waitForFunction("document.getElementById('stored').options.length > 1");
    await page.selectOption('#stored', 'uploads/sample.csv');
    await page.tap('#submit');
    await page.waitForFunction(RESULT_IN_VIEW_AND_FOCUSED, undefined, { timeout: 30_000 });
    expect(await page.evaluate('window.scrollY')).toBeGreaterThan(300);
    // Nothing wider than the screen: no sideways scrolling, every exact sum whole on screen.
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(PHONE.width);
    const sums = page.locator('#result td.sum');
    expect(await sums.allTextContents()).toEqual(SAMPLE_SUMS);
    const boxes = await page.evaluate<{ left: number; right: number }[]>(
      "[...document.querySelectorAll('#result td.sum')].map((c) => { const r = c.getBoundingClientRect(); return { left: r.left, right: r.right }; })",
    );
    expect(boxes).toHaveLength(5);
    for (const box of boxes) {
      expect(box.left).toBeGreaterThanOrEqual(0);
      expect(box.right).toBeLessThanOrEqual(PHONE.width);
    }
    // Each value says what it is: the labels the header row gives on a wide screen.
    expect(await page.evaluate("getComputedStyle(document.querySelector('#result td.sum'), '::before').content")).toBe('"Exact sum"');
    expect(await page.getAttribute('#result', 'role')).toBe('table');
    await page.screenshot({ path: path.join(SHOTS, 'page-phone.png') });
    expect(errors).toEqual([]);
  });
});

describe('the page against a server without the event stream', () => {
  it('waits on the job it shows (?wait=) and shows the result when it comes, without polling', async () => {
    const context = await browser.newContext({ viewport: DESKTOP, bypassCSP: true });
    const page = await context.newPage();
    // As an API from before the stream answers: 404, no such route.
    await page.route('**/api/v1/events', (route) =>
      route.fulfill({ status: 404, contentType: 'application/problem+json', body: JSON.stringify({ status: 404, code: 'NOT_FOUND', detail: 'no route' }) }),
    );
    const asked: string[] = [];
    page.on('request', (req) => asked.push(`${req.method()} ${new URL(req.url()).pathname}${new URL(req.url()).search}`));
    try {
      await page.goto(stack.url);
      await page.locator('#jobs-updated', { hasText: 'updates come as jobs finish' }).waitFor();
      await page.fill('#location', 'uploads/sample.csv');
      await page.click('#submit');
      await page.waitForFunction(RESULT_IN_VIEW_AND_FOCUSED, undefined, { timeout: 30_000 });
      expect(await page.locator('#result td.sum').allTextContents()).toEqual(SAMPLE_SUMS);
      const id = await page.evaluate<string>("document.querySelector('#jobs li button').dataset.id");
      const waits = asked.filter((r) => r.startsWith(`GET /api/v1/jobs/${id}`));
      expect(waits.length).toBeGreaterThanOrEqual(1);
      expect(waits.every((r) => r.endsWith('?wait=25'))).toBe(true);
    } finally {
      await context.close();
    }
  });
});

describe('the page\'s progress, with a job moved by hand as an executor would', () => {
  let idle: Stack;
  let page: Page;
  let errors: string[];

  beforeAll(async () => {
    // No executor: jobs wait in the queue, and the test claims them and reports progress through the store.
    idle = await startStack({ executors: 0, env: { LEASE_MS: '60000' } });
    idle.writeFile('big.csv', 'a\n1\n');
    ({ page, errors } = await open(idle.url, { viewport: DESKTOP }));
  });
  afterAll(async () => {
    await page?.context().close();
    await idle?.stop();
  });

  const text = (): Promise<string> => page.locator('#detail-progress .progress-text').textContent().then((t) => t ?? '');
  const waitForText = (pattern: RegExp) =>
    page.waitForFunction(`${pattern.toString()}.test(document.querySelector('#detail-progress .progress-text')?.textContent ?? '')`);

  async function submitThroughPage(): Promise<string> {
    await page.fill('#location', 'big.csv');
    await page.click('#submit');
    await waitForText(/^Waiting for an executor$/);
    const id = await page.evaluate<string>("document.querySelector('#jobs li button').dataset.id");
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    return id;
  }

  async function claim(id: string): Promise<number> {
    const outcome = await idle.store.claim(id);
    if (outcome.kind !== 'claimed') { throw new Error(`could not claim ${id}: ${outcome.kind}`); }
    return outcome.attempt;
  }

  it('shows the percent from the start, then rows/s and the time left, then the result, all from the event stream', async () => {
    const asked: string[] = [];
    const record = (req: { method(): string; url(): string }) => asked.push(`${req.method()} ${new URL(req.url()).pathname}`);
    page.on('request', record);
    const id = await submitThroughPage();
    // The count is live too: this job is the stack's only one.
    await page.waitForFunction("document.getElementById('count-active').textContent === '1' && document.getElementById('count-queued').textContent === '1'");
    const attempt = await claim(id);
    await page.waitForFunction("document.getElementById('count-running').textContent === '1'");
    const total = 4_000_000;
    // What the executor records at claim once it knows the size: nothing read yet, the total known.
    await idle.store.heartbeat(id, attempt, { bytesRead: 0, bytesTotal: total, rows: 0 });
    await waitForText(/^0% · 0 B of 3\.8 MB · 0 rows$/);
    expect(await page.getAttribute('#detail-progress .bar', 'aria-valuenow')).toBe('0');
    expect(await page.locator('#detail-progress .bar.indeterminate').count()).toBe(0);

    await idle.store.heartbeat(id, attempt, { bytesRead: 1_000_000, bytesTotal: total, rows: 10_000 });
    await waitForText(/^25% · /);
    await idle.store.heartbeat(id, attempt, { bytesRead: 2_000_000, bytesTotal: total, rows: 20_000 });
    await waitForText(/^50% · 1\.9 MB of 3\.8 MB · 20,000 rows · [\d,]+ rows\/s · .+ left$/);
    expect(await page.getAttribute('#detail-progress .bar', 'aria-valuenow')).toBe('50');
    await page.locator('#detail').screenshot({ path: path.join(SHOTS, 'page-progress.png') });

    const job = (await idle.store.get(id)) as Job;
    expect(job.status).toBe('running');
    await idle.store.finish(id, attempt, { result: { rows: 40_000, columns: [{ name: 'a', index: 0, sum: '40000', value: 40000, count: 40_000 }] } }, { bytesRead: total, bytesTotal: total, rows: 40_000 });
    await page.waitForFunction(RESULT_IN_VIEW_AND_FOCUSED);
    expect(await page.locator('#result td.sum').allTextContents()).toEqual(['40000']);
    await page.waitForFunction("document.getElementById('count-active').textContent === '0'");
    page.off('request', record);
    // Not one request for the job or the counts while it ran: the stream told the page everything. (The
    // page's one read of its history may fall in this window, as it follows the stream's start.)
    expect(asked.filter((r) => r.startsWith('GET /api/v1/jobs/'))).toEqual([]);
    expect(asked.filter((r) => r !== 'GET /api/v1/jobs')).toEqual(['POST /api/v1/jobs']);
    expect(asked.filter((r) => r === 'GET /api/v1/jobs').length).toBeLessThanOrEqual(1);
  });

  it('still says something useful while the size is unknown (bytesTotal 0): rows and rows/s, no percent', async () => {
    const id = await submitThroughPage();
    const attempt = await claim(id);
    await idle.store.heartbeat(id, attempt, { bytesRead: 500, bytesTotal: 0, rows: 100 });
    await waitForText(/^Reading · 500 B · 100 rows$/);
    expect(await page.locator('#detail-progress .bar.indeterminate').count()).toBe(1);
    await idle.store.heartbeat(id, attempt, { bytesRead: 1500, bytesTotal: 0, rows: 300 });
    await waitForText(/^Reading · 1\.5 KB · 300 rows · [\d,]+ rows\/s$/);
    expect(await text()).not.toMatch(/%|NaN|left|undefined/);
  });

  it('cancels a running job', async () => {
    const id = (await page.evaluate<string>("document.querySelector('#jobs li button').dataset.id"));
    await page.click('#cancel');
    await page.waitForFunction("document.getElementById('detail-title').textContent === 'Cancelled'");
    expect((await idle.store.get(id))?.status).toBe('cancelled');
    expect(await page.locator('#cancel').isHidden()).toBe(true);
    expect(errors).toEqual([]);
  });
});
