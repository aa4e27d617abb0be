import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { SAMPLE, SAMPLE_SUMS as SAMPLE_COLUMNS } from '../../test/support/sample';
import { startStack, type Stack } from '../../test/support/stack';

/** Debian's chromium; playwright-core never downloads a browser. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** `UPDATE_SCREENSHOT=1 npx jest api/test/web.test.ts` refreshes the README's picture; otherwise it goes to a temp folder. */
const SCREENSHOT = process.env.UPDATE_SCREENSHOT
  ? path.join(__dirname, '..', '..', 'docs', 'screenshot.png')
  : path.join(os.tmpdir(), 'decisum-screenshot.png');

const SAMPLE_SUMS = SAMPLE_COLUMNS.map((c) => c.sum);

describe('the web page, in headless Chromium', () => {
  let stack: Stack;
  let browser: Browser;
  let page: Page;
  let scratch: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!fs.existsSync(CHROMIUM)) { throw new Error(`no browser at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`); }
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-web-'));
    [stack, browser] = await Promise.all([
      startStack({ executors: 1 }),
      chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] }),
    ]);
    page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') { pageErrors.push(msg.text()); }
    });
    await page.goto(stack.url);
  });

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    if (scratch) { fs.rmSync(scratch, { recursive: true, force: true }); }
  });

  async function uploadThroughPage(file: string, expectLocation: string) {
    await page.setInputFiles('#upload', file);
    await page.locator('#upload-status.ok').waitFor();
    expect(await page.inputValue('#location')).toBe(expectLocation);
  }

  it('serves the page with its script and styles, and shows the active count', async () => {
    await expect(page.title()).resolves.toContain('decisum');
    // Strings, not functions: these run in the page, and the tests compile without the DOM's types.
    await page.waitForFunction("document.getElementById('count-active').textContent === '0'");
    expect(await page.locator('#jobs-empty').isVisible()).toBe(true);
  });

  it('uploads the reference sample through the file input, sums it, and shows the five sums', async () => {
    await uploadThroughPage(SAMPLE, 'uploads/sample.csv');
    expect(fs.readFileSync(path.join(stack.dataDir, 'uploads', 'sample.csv'))).toEqual(fs.readFileSync(SAMPLE));
    // The listing now offers the uploaded file, selected.
    expect(await page.inputValue('#stored')).toBe('uploads/sample.csv');

    await page.click('#submit');
    const table = page.locator('#result');
    await table.waitFor({ state: 'visible', timeout: 30_000 });
    const sums = await table.locator('tbody td.sum').allTextContents();
    expect(sums).toEqual(SAMPLE_SUMS);
    expect(await table.locator('tbody th').allTextContents()).toEqual(['col0', 'col10', 'col20', 'col30', 'col40']);
    expect(await page.textContent('#result-caption')).toContain('168 rows');
    await page.locator('#jobs li[data-status="succeeded"]').first().waitFor();
    expect(await page.locator('#jobs .bar.succeeded').first().getAttribute('aria-valuenow')).toBe('100');
  });

  it('copies the result as JSON', async () => {
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: stack.url });
    await page.click('#copy');
    await page.locator('#copy-status', { hasText: 'Copied' }).waitFor();
    const copied = JSON.parse(await page.evaluate<string>('navigator.clipboard.readText()')) as { rows: number; columns: { sum: string }[] };
    expect(copied.rows).toBe(168);
    expect(copied.columns.map((c) => c.sum)).toEqual(SAMPLE_SUMS);
  });

  it('submits a file with a non-numeric cell and says what is wrong, where', async () => {
    const bad = path.join(scratch, 'prices.csv');
    fs.writeFileSync(bad, 'price,qty\n1.5,2\nabc,3\n');
    await uploadThroughPage(bad, 'uploads/prices.csv');
    await page.click('#submit');
    const error = page.locator('#detail-error');
    await error.waitFor({ state: 'visible', timeout: 30_000 });
    const text = (await error.textContent()) ?? '';
    expect(text).toContain('not a number');
    expect(text).toContain('row 3');
    expect(text).toContain('price');
    expect(text).toContain('NON_NUMERIC');
    expect(await page.locator('#result-wrap').isHidden()).toBe(true);
  });

  it('shows a refused submission in words', async () => {
    await page.fill('#location', '../../etc/passwd');
    await page.click('#submit');
    const alert = page.locator('#form-error');
    await alert.waitFor({ state: 'visible' });
    expect(await alert.textContent()).toMatch(/leaves the data folder.*outside DATA_DIR/);

    await page.fill('#location', 'nowhere.csv');
    await page.click('#submit');
    await page.locator('#form-error', { hasText: 'does not exist' }).waitFor();
  });

  it('lists the jobs and shows the sample again when picked; takes the README screenshot', async () => {
    await page.selectOption('#stored', 'uploads/sample.csv');
    expect(await page.inputValue('#location')).toBe('uploads/sample.csv');
    expect(await page.locator('#form-error').isHidden()).toBe(true);
    await page.locator('#jobs li[data-status="succeeded"] button').first().click();
    await page.locator('#result').waitFor({ state: 'visible' });
    expect(await page.locator('#jobs li').count()).toBe(2);
    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(fs.statSync(SCREENSHOT).size).toBeGreaterThan(10_000);
    expect(pageErrors.filter((e) => !/status of 4\d\d/.test(e))).toEqual([]);
  });
});
