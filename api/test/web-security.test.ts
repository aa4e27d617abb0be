import { chromium, type Browser, type Page } from 'playwright-core';
import { hashToken } from '@decisum/shared';
import { startStack, type Stack } from '../../test/support/stack';

/** Debian's chromium; playwright-core never downloads a browser. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TOKEN = 'dcs_web_security_test_token';

/** What the predicates below read in the page (they run there, as functions, which the CSP allows; strings would be evals). */
interface PageGlobals {
  sessionStorage: { getItem(key: string): string | null };
  document: { getElementById(id: string): { textContent: string | null } | null };
}

/** The page and Swagger UI under the CSP, against an API that needs a token, in headless Chromium. */
describe('the page and Swagger UI with tokens and the CSP', () => {
  let browser: Browser;
  let stack: Stack;
  beforeAll(async () => {
    [stack, browser] = await Promise.all([
      startStack({ executors: 0, env: { API_TOKENS: JSON.stringify([{ name: 'web', sha256: hashToken(TOKEN), scopes: ['jobs:read', 'jobs:write', 'files:read', 'files:write'] }]) } }),
      chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] }),
    ]);
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  /** A page whose CSP violations and script errors are collected. */
  const open = async (): Promise<{ page: Page; violations: string[]; prompts: string[] }> => {
    const page = await (await browser.newContext()).newPage();
    const violations: string[] = [];
    const prompts: string[] = [];
    page.on('pageerror', (err) => violations.push(err.message));
    page.on('console', (msg) => {
      if (/Content Security Policy|Refused to/i.test(msg.text())) { violations.push(msg.text()); }
    });
    page.on('dialog', (dialog) => {
      prompts.push(dialog.message());
      void dialog.accept(TOKEN);
    });
    return { page, violations, prompts };
  };

  it('asks for a token once on 401, keeps it for the tab, and then shows the active count, with no CSP violation', async () => {
    const { page, violations, prompts } = await open();
    await page.goto(`${stack.url}/`);
    await page.waitForFunction(() => (globalThis as unknown as PageGlobals).sessionStorage.getItem('decisum.token') !== null);
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).sessionStorage.getItem('decisum.token'))).toBe(TOKEN);
    expect(prompts.length).toBeGreaterThanOrEqual(1);
    expect(prompts[0]).toMatch(/token/i);
    await page.waitForFunction(() => (globalThis as unknown as PageGlobals).document.getElementById('count-active')?.textContent === '0');
    // Reloaded in the same tab: the token is still there, so no prompt.
    const before = prompts.length;
    await page.reload();
    await page.waitForFunction(() => (globalThis as unknown as PageGlobals).document.getElementById('count-active')?.textContent === '0');
    expect(prompts.length).toBe(before);
    expect(violations).toEqual([]);
  });

  it('renders Swagger UI under the CSP, with an Authorize button for the bearer token', async () => {
    const { page, violations } = await open();
    await page.goto(`${stack.url}/docs/`);
    await page.locator('.swagger-ui .info .title').waitFor();
    await page.locator('button.authorize').waitFor();
    expect(violations).toEqual([]);
  });
});
