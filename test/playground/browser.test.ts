/**
 * The playground in a real headless Chromium: the page loads with no request leaving the machine, runs a query and
 * shows its result. A screenshot goes to test/artifacts/. Skipped (with a note) where Chromium is not installed;
 * `.ci/run` installs it.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_MISSING, launchChromium } from '../helpers/chromium.js';
import { startServer, useServer } from '../helpers/server.js';

const ARTIFACTS = path.resolve(import.meta.dirname, '..', 'artifacts');
const { db, server } = useServer('playground');
let browser: Browser | undefined;

beforeAll(async () => {
  if (CHROMIUM_MISSING) return;
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

describe.skipIf(
  (await import('../helpers/ci.js')).skipWithout(CHROMIUM_MISSING),
)(`the playground in a browser${CHROMIUM_MISSING ? `: skipped, ${CHROMIUM_MISSING}` : ''}`, () => {
  it('loads offline from the server alone, runs a query and shows the result', async () => {
    const context = await browser!.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const foreign: string[] = [];
    const origin = new URL(server.url).origin;
    page.on('request', (req) => {
      if (!req.url().startsWith(origin) && !req.url().startsWith('data:')) foreign.push(req.url());
    });
    const created = await server.gql<{ createTask: { id: string } }>('mutation { createTask(input: { title: "Seen in the browser", priority: CRITICAL }) { id } }');
    expect(created.body.errors).toBeUndefined();

    await page.goto(`${server.url}/graphql`, { waitUntil: 'networkidle' });
    await page.waitForSelector('.graphiql-container', { timeout: 20_000 });
    // The tour is preloaded: the first tab holds the create mutation.
    expect(await page.locator('.graphiql-query-editor').innerText()).toContain('Create two tasks');

    // Run the tour's listing tab and read the result pane.
    await page.locator('.graphiql-tab').nth(3).click();
    expect(await page.locator('.graphiql-query-editor').innerText()).toContain('4. List with filters');
    await page.locator('.graphiql-execute-button').click();
    // A locator wait, not a page script: the page's Content-Security-Policy forbids eval, as it should.
    await page.locator('.result-window', { hasText: 'Seen in the browser' }).waitFor({ timeout: 20_000 });
    expect(await page.locator('.result-window').innerText()).toContain('Seen in the browser');

    // The docs explorer opens on the schema.
    await page.locator('[aria-label="Show Documentation Explorer"]').click();
    await page.waitForSelector('.graphiql-doc-explorer', { timeout: 10_000 });

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'playground.png') });
    expect(foreign).toEqual([]);
    await context.close();
  }, 60_000);

  it('runs the tour\'s subscription over WebSocket and shows an event pushed by a mutation', async () => {
    const context = await browser!.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${server.url}/graphql`, { waitUntil: 'networkidle' });
    await page.waitForSelector('.graphiql-container', { timeout: 20_000 });
    const tab = page.locator('.graphiql-tab').nth(6);
    await tab.click();
    expect(await page.locator('.graphiql-query-editor').innerText()).toContain('7. Live events');
    const socket = page.waitForEvent('websocket', { timeout: 20_000 });
    await page.locator('.graphiql-execute-button').click();
    expect((await socket).url()).toBe(`${server.url.replace('http:', 'ws:')}/graphql`);
    // The stream starts "now": keep creating until the page shows one (the first may race the subscribe).
    const title = `Pushed to the browser ${Date.now()}`;
    const shown = page.locator('.result-window', { hasText: 'CREATED' });
    for (let attempt = 0; attempt < 20 && !(await shown.count()); attempt++) {
      const created = await server.gql<{ createTask: { id: string } }>(`mutation { createTask(input: { title: "${title}" }) { id } }`);
      expect(created.body.errors).toBeUndefined();
      await shown.waitFor({ timeout: 1000 }).catch(() => undefined);
    }
    await shown.waitFor({ timeout: 20_000 });
    expect(await page.locator('.result-window').innerText()).toContain(title);
    await context.close();
  }, 60_000);
});

describe('the playground routes', () => {
  it('are at /playground and GET /graphql for browsers, and off in production unless PLAYGROUND=true', async () => {
    const res = await fetch(`${server.url}/playground`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('/playground/assets/playground.js');
    const viaGraphql = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(viaGraphql.headers.get('content-type')).toMatch(/text\/html/);
    const asset = await fetch(`${server.url}/playground/assets/playground.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/javascript/);

    const production = await startServer(db.url, { NODE_ENV: 'production' });
    const enabled = await startServer(db.url, { NODE_ENV: 'production', PLAYGROUND: 'true' });
    try {
      expect((await fetch(`${production.url}/playground`)).status).toBe(404);
      const page = await fetch(`${production.url}/graphql`, { headers: { accept: 'text/html' } });
      expect(page.headers.get('content-type')).not.toMatch(/text\/html/);
      expect((await fetch(`${enabled.url}/playground`)).status).toBe(200);
    } finally {
      await production.stop();
      await enabled.stop();
    }
  });
});
