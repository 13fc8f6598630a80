/**
 * Playground links (`/playground?query=...&variables=...&operationName=...`) in a real headless Chromium: the link
 * opens its operation in the active tab beside the tour, with its variables, and the run button runs it. The
 * README's links are read from README.md itself, so a link there that does not open, or does not run, fails here.
 * Like browser.test.ts, skipped (with a note) where Chromium is not installed, and failing instead in CI.
 *
 * To make a README link: `playgroundLink('http://localhost:4000/playground', { query, variables, operationName })`
 * from playground/src/link.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema, parse, validate } from 'graphql';
import { type Browser, type BrowserContextOptions, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_MISSING, launchChromium } from '../helpers/chromium.js';
import { skipWithout } from '../helpers/ci.js';
import { useServer } from '../helpers/server.js';
import { playgroundLink, readLink, type PlaygroundLink } from '../../playground/src/link.js';
import { TOUR } from '../../playground/src/tour.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const README_PAGE = 'http://localhost:4000/playground';
const { server } = useServer('playground_links');
let browser: Browser | undefined;

/** The README's playground links, by reference label (`[tour-1]: http://localhost:4000/playground?...`). */
function readmeLinks(): Map<string, string> {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const links = new Map<string, string>();
  for (const match of readme.matchAll(/^\[([\w-]+)\]: (http:\/\/localhost:4000\/playground\?\S+)$/gm)) links.set(match[1]!, match[2]!);
  return links;
}

/** The README link labelled `label`, decoded. */
function readmeLink(label: string): { url: string; link: PlaygroundLink } {
  const url = readmeLinks().get(label);
  if (!url) throw new Error(`README.md has no playground link [${label}]`);
  const link = readLink(new URL(url).search);
  if (!link) throw new Error(`README.md's link [${label}] has no query`);
  return { url, link };
}

beforeAll(async () => {
  if (CHROMIUM_MISSING) return;
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

/** A fresh browser profile (optionally with saved storage) on a page that records uncaught errors. */
async function openPage(options: BrowserContextOptions = {}): Promise<{ page: Page; errors: string[]; close: () => Promise<void> }> {
  const context = await browser!.newContext({ viewport: { width: 1400, height: 900 }, ...options });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  return { page, errors, close: () => context.close() };
}

/** Goes to `url` and waits for GraphiQL to show a query. */
async function open(page: Page, url: string): Promise<void> {
  await page.goto(url, { waitUntil: 'networkidle' });
  await page.waitForSelector('.graphiql-container .graphiql-query-editor .CodeMirror', { timeout: 20_000 });
}

const queryText = (page: Page) => page.locator('.graphiql-query-editor').innerText();
const variablesText = (page: Page) => page.locator('.graphiql-editor-tool').innerText();
const activeTab = (page: Page) => page.locator('.graphiql-tab-active').innerText();


describe.skipIf(skipWithout(CHROMIUM_MISSING))(`playground links in a browser${CHROMIUM_MISSING ? `: skipped, ${CHROMIUM_MISSING}` : ''}`, () => {
  it("opens the README's create link with its variables beside the tour, runs it, and finds its tab again", async () => {
    const { url, link } = readmeLink('try-create');
    const title = (JSON.parse(link.variables!) as { input: { title: string } }).input.title;
    const { page, errors, close } = await openPage();
    await open(page, url.replace(README_PAGE, `${server.url}/playground`));

    await expect.poll(() => queryText(page)).toContain('createTask(input: $input)');
    expect(await page.locator('.graphiql-tab').count()).toBe(TOUR.length + 1);
    expect(await activeTab(page)).toBe('CreateTask');
    expect(await page.locator('.graphiql-tab').first().innerText()).toBe('<untitled>'); // the tour, still there
    await expect.poll(() => variablesText(page)).toContain(title);

    await page.locator('.graphiql-execute-button').click();
    await page.locator('.result-window', { hasText: title }).waitFor({ timeout: 20_000 });
    expect(await page.locator('.result-window').innerText()).toMatch(/"status": "PENDING"/);
    const created = await server.gql<{ tasks: { nodes: Array<{ title: string }> } }>('{ tasks(first: 100) { nodes { title } } }');
    expect(created.body.data?.tasks.nodes.filter((t) => t.title === title)).toHaveLength(1);

    // The same link again: its tab is found, not added a second time.
    await open(page, url.replace(README_PAGE, `${server.url}/playground`));
    await expect.poll(() => queryText(page)).toContain('createTask(input: $input)');
    expect(await page.locator('.graphiql-tab').count()).toBe(TOUR.length + 1);
    expect(await activeTab(page)).toBe('CreateTask');

    // A tour tab run right after leaving the link's tab (two clicks, faster than GraphiQL refreshes its idea of
    // the document) does not send the link's operation name with it.
    const tab = await page.locator('.graphiql-tab').nth(4).boundingBox();
    const run = await page.locator('.graphiql-execute-button').boundingBox();
    await page.mouse.click(tab!.x + tab!.width / 2, tab!.y + tab!.height / 2);
    await page.mouse.click(run!.x + run!.width / 2, run!.y + run!.height / 2);
    await page.locator('.result-window', { hasText: /taskStatistics|errors/ }).waitFor({ timeout: 20_000 });
    expect(await page.locator('.result-window').innerText()).not.toContain('errors');
    expect(await page.locator('.result-window').innerText()).toContain('"total"');
    expect(errors).toEqual([]);
    await close();
  }, 60_000);

  it('opens a link over a stale saved tab state, and runs the operation it names among several', async () => {
    const created = await server.gql<{ createTask: { id: string } }>('mutation { createTask(input: { title: "Read through a link" }) { id } }');
    const id = created.body.data!.createTask.id;
    const stale = { tabs: [{ id: 'old', title: '<untitled>', query: '{ __typename }', variables: null, headers: null, operationName: null, response: null }], activeTabIndex: 0 };
    const { page, errors, close } = await openPage({
      storageState: {
        cookies: [],
        origins: [{
          origin: server.url,
          localStorage: [
            { name: 'graphiql:tabState', value: JSON.stringify(stale) },
            { name: 'graphiql:query', value: '{ __typename }' },
            { name: 'graphiql:variables', value: '{ "left": "over" }' },
          ],
        }],
      },
    });
    const query = 'query Count {\n  tasks(first: 1) { totalCount }\n}\n\nquery ReadTask($id: ID!) {\n  task(id: $id) { id title }\n}';
    await open(page, playgroundLink(`${server.url}/playground`, { query, variables: JSON.stringify({ id }), operationName: 'ReadTask' }));

    await expect.poll(() => queryText(page)).toContain('task(id: $id)');
    expect(await page.locator('.graphiql-tab').count()).toBe(2); // the saved tab, and the link's
    expect(await activeTab(page)).toBe('ReadTask');
    await expect.poll(() => variablesText(page)).toContain(id);
    // Two operations, and the link names one: the button runs it (no menu to choose from).
    await page.locator('.graphiql-execute-button').click();
    await page.locator('.result-window', { hasText: 'Read through a link' }).waitFor({ timeout: 20_000 });
    expect(await page.locator('.result-window').innerText()).not.toContain('totalCount');
    expect(errors).toEqual([]);
    await close();
  }, 60_000);

  it('opens a link whose variables are not JSON, showing them as given, and the run says what is wrong', async () => {
    const { page, errors, close } = await openPage();
    const variables = '{ "id": oops';
    await open(page, playgroundLink(`${server.url}/playground`, { query: 'query ReadTask($id: ID!) {\n  task(id: $id) { title }\n}', variables }));

    await expect.poll(() => queryText(page)).toContain('task(id: $id)');
    expect(await page.locator('.graphiql-tab').count()).toBe(TOUR.length + 1);
    await expect.poll(() => variablesText(page)).toContain(variables);
    await page.locator('.graphiql-execute-button').click();
    await page.locator('.result-window', { hasText: 'Variables are invalid JSON' }).waitFor({ timeout: 20_000 });
    expect(errors).toEqual([]);
    await close();
  }, 60_000);

  it('without a query, opens as a plain visit: the tour, on its first step', async () => {
    const { page, errors, close } = await openPage();
    await open(page, `${server.url}/playground?variables=%7B%7D&operationName=Nothing`);
    await expect.poll(() => queryText(page)).toContain('Create two tasks');
    expect(await page.locator('.graphiql-tab').count()).toBe(TOUR.length);
    expect(errors).toEqual([]);
    await close();
  }, 60_000);
});

describe("the README's playground links", () => {
  const links = readmeLinks();

  it('are one per example, each a valid operation with JSON variables, and the tour runs in order', async () => {
    expect([...links.keys()]).toEqual(['try-create', 'try-list', 'try-update', 'tour-1', 'tour-2', 'tour-3', 'tour-4', 'tour-5', 'tour-6', 'tour-6-head', 'tour-7']);
    const schema = buildSchema(readFileSync(path.join(ROOT, 'schema.graphql'), 'utf8'));
    for (const label of links.keys()) {
      const { link } = readmeLink(label);
      expect(validate(schema, parse(link.query)), label).toEqual([]);
      if (link.variables) expect(() => JSON.parse(link.variables!) as unknown, label).not.toThrow();
      expect(link.operationName, label).toBeTruthy();
      // Encoded so that Markdown keeps the link whole: nothing that ends it or splits it.
      expect(links.get(label), label).toMatch(/^[\w:/.?=&%~-]+$/);
    }
    // "Try it": create, then update with the id it gave, as the README says to.
    const create = readmeLink('try-create').link;
    const made = await server.gql<{ createTask: { id: string } }>(create.query, JSON.parse(create.variables!) as Record<string, unknown>);
    expect(made.body.errors).toBeUndefined();
    const update = readmeLink('try-update').link;
    const updated = await server.gql(update.query, { ...(JSON.parse(update.variables!) as Record<string, unknown>), id: made.body.data!.createTask.id });
    expect(updated.body.errors).toBeUndefined();
    expect((await server.gql(readmeLink('try-list').link.query, { first: 10 })).body.errors).toBeUndefined();
    // Every step but the subscription, over HTTP, in order: the ids of step 1 carry the rest.
    for (const label of ['tour-1', 'tour-2', 'tour-3', 'tour-4', 'tour-5', 'tour-6', 'tour-6-head']) {
      const { link } = readmeLink(label);
      const res = await server.gql(link.query, link.variables ? (JSON.parse(link.variables) as Record<string, unknown>) : undefined);
      expect(res.body.errors, label).toBeUndefined();
    }
  });
});
