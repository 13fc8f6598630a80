/**
 * A frontend on another origin, in a real headless Chromium: a page served from a second local HTTP server (another
 * port is another origin) loads the client package's browser build (packages/client compiled by its own tsconfig,
 * bundled by esbuild for the browser) and, against a server with CORS_ORIGINS listing it and authentication on,
 * queries, mutates with a bearer token and subscribes. A page from a third origin, not listed, is refused: its
 * fetch rejects and its WebSocket is refused. Skipped where Chromium is not installed (failed in CI).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { SignJWT } from 'jose';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_MISSING, launchChromium } from '../helpers/chromium.js';
import type * as ClientModule from '@task-tracker/client';
import { skipWithout } from '../helpers/ci.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitForSubscriptions } from '../helpers/ws.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const SECRET = 'a-test-secret-that-is-long-enough-for-hs256';

/** What the page's module script leaves on `window`: the client package, as an app would import it. */
interface PageWindow {
  taskTracker: typeof ClientModule;
}

/** A one-page site on its own port: `/` loads `/client.js` (the bundle) as a module and puts it on `window`. */
async function serveSite(bundle: string): Promise<{ server: Server; origin: string }> {
  const page = `<!doctype html><meta charset="utf-8"><title>a frontend</title>
<script type="module">import * as client from '/client.js'; window.taskTracker = client;</script>`;
  const server = createServer((req, res) => {
    if (req.url === '/client.js') res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(bundle);
    else if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** The client package's own build (its tsconfig, to a temporary directory), bundled for browsers. */
async function browserBuild(): Promise<string> {
  const out = await mkdtemp(path.join(os.tmpdir(), 'task-tracker-client-'));
  try {
    await promisify(execFile)(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'packages/client/tsconfig.json', '--outDir', out], { cwd: ROOT });
    const bundled = await build({
      entryPoints: [path.join(out, 'index.js')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'chrome120',
      write: false,
      metafile: true,
      // The compiled files sit outside the repository: their imports (graphql, graphql-ws) come from its node_modules.
      nodePaths: [path.join(ROOT, 'node_modules')],
      logLevel: 'silent',
    });
    // Nothing of Node's: with `ws` or a node: module in it, the bundle would not run in a browser at all.
    expect(Object.keys(bundled.metafile.inputs).filter((input) => /node_modules\/ws\/|^node:/.test(input))).toEqual([]);
    return bundled.outputFiles[0]!.text;
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

let db: TestDatabase;
let api: TestServer;
let browser: Browser | undefined;
let listed: { server: Server; origin: string };
let stranger: { server: Server; origin: string };
let token: string;

beforeAll(async () => {
  if (CHROMIUM_MISSING) return;
  const bundle = await browserBuild();
  listed = await serveSite(bundle);
  stranger = await serveSite(bundle);
  db = await createTestDatabase('browser_cors');
  api = await startServer(db.url, { CORS_ORIGINS: listed.origin, AUTH_JWT_SECRET: SECRET });
  token = await new SignJWT({ sub: 'ada', scope: 'tasks:write' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('10m').sign(new TextEncoder().encode(SECRET));
  browser = await launchChromium();
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await api?.stop();
  await db?.drop();
  for (const site of [listed, stranger]) if (site) await new Promise((resolve) => site.server.close(resolve));
});

/** A fresh page of `origin`, with the client loaded; console errors collected. */
async function open(origin: string): Promise<{ page: Page; consoleErrors: string[] }> {
  const context = await browser!.newContext();
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  // Module scripts run before `load`: the client is on window once goto returns.
  await page.goto(`${origin}/`, { waitUntil: 'load' });
  return { page, consoleErrors };
}

describe.skipIf(skipWithout(CHROMIUM_MISSING))(
  `a frontend on another origin, in Chromium${CHROMIUM_MISSING ? `: skipped, ${CHROMIUM_MISSING}` : ''}`,
  () => {
    it('from a listed origin: queries, mutates with a token, reads x-request-id, and receives a subscription event', async () => {
      const { page } = await open(listed.origin);
      const graphql = `${api.url}/graphql`;
      const http = await page.evaluate(
        async ({ graphql, token }) => {
          const { createClient, CreateTaskDocument, ShowTaskDocument, TaskTrackerError } = (globalThis as unknown as PageWindow).taskTracker;
          // Without a token the 401 is still readable by the page: its code, and the request id it exposes.
          const refused = await createClient({ url: graphql })
            .request(ShowTaskDocument, { id: '00000000-0000-4000-8000-000000000000' })
            .catch((err: unknown) => err);
          const seen: Array<string | null> = [];
          const client = createClient({
            url: graphql,
            token,
            // Sent on every request, so every preflight asks for all the headers the client may send.
            minLsn: '0/1',
            headers: { 'x-request-id': 'from-the-browser' },
            fetch: async (input, init) => {
              const res = await fetch(input, init);
              seen.push(res.headers.get('x-request-id'));
              return res;
            },
          });
          const { createTask } = await client.request(CreateTaskDocument, { input: { title: 'Made in a browser', tags: ['browser'] } });
          const { task } = await client.request(ShowTaskDocument, { id: createTask.id });
          return {
            refused: refused instanceof TaskTrackerError ? { code: refused.code, status: refused.status, requestId: refused.requestId } : String(refused),
            created: { id: createTask.id, createdBy: createTask.createdBy, version: createTask.version },
            shown: task?.title,
            seen,
          };
        },
        { graphql, token },
      );
      expect(http.refused).toMatchObject({ code: 'UNAUTHENTICATED', status: 401, requestId: expect.stringMatching(/^[0-9a-f-]{36}$/) as string });
      expect(http.created).toMatchObject({ createdBy: 'ada', version: 1 });
      expect(http.shown).toBe('Made in a browser');
      expect(http.seen).toEqual(['from-the-browser', 'from-the-browser']);

      // The stream, over the browser's own WebSocket, with the token in connection_init.
      await page.evaluate(
        ({ graphql, token }) => {
          const { watchTaskEvents } = (globalThis as unknown as PageWindow).taskTracker;
          const globals = globalThis as unknown as { firstEvent: Promise<unknown> };
          globals.firstEvent = new Promise((resolve, reject) => {
            watchTaskEvents({ url: graphql, token }, { kinds: ['CREATED'] }, { next: resolve, error: (err) => reject(new Error(`${err.code}: ${err.message}`)) });
          });
        },
        { graphql, token },
      );
      await waitForSubscriptions(api.url, 1);
      const made = await api.gql<{ createTask: { id: string } }>('mutation { createTask(input: { title: "Pushed to the page" }) { id } }', {}, { authorization: `Bearer ${token}` });
      const event = await page.evaluate(() => (globalThis as unknown as { firstEvent: Promise<{ kind: string; taskId: string; actor: string }> }).firstEvent);
      expect(event).toMatchObject({ kind: 'CREATED', taskId: made.body.data!.createTask.id, actor: 'ada' });
      await page.context().close();
    }, 60_000);

    it('from an origin not listed: fetch rejects (CORS) and nothing runs, the WebSocket is refused', async () => {
      const { page, consoleErrors } = await open(stranger.origin);
      const outcome = await page.evaluate(
        async ({ graphql, token }) => {
          const { createClient, CreateTaskDocument, TaskTrackerError, watchTaskEvents } = (globalThis as unknown as PageWindow).taskTracker;
          const describe = (err: unknown) => (err instanceof TaskTrackerError ? { code: err.code, message: err.message } : { code: 'not a TaskTrackerError', message: String(err) });
          const fetched = await createClient({ url: graphql, token })
            .request(CreateTaskDocument, { input: { title: 'Made by a stranger' } })
            .then(() => ({ code: 'accepted', message: '' }), describe);
          const streamed = await new Promise<{ code: string; message: string }>((resolve) => {
            watchTaskEvents({ url: graphql, token, retryAttempts: 0 }, {}, { next: () => resolve({ code: 'event', message: '' }), error: (err) => resolve(describe(err)) });
          });
          return { fetched, streamed };
        },
        { graphql: `${api.url}/graphql`, token },
      );
      expect(outcome.fetched.code).toBe('UNREACHABLE');
      expect(outcome.fetched.message).toMatch(/Cannot reach http:\/\/127\.0\.0\.1:\d+\/graphql: Failed to fetch/);
      expect(consoleErrors.join('\n')).toMatch(/blocked by CORS policy/);
      expect(outcome.streamed).toEqual({ code: 'UNREACHABLE', message: `Cannot stream from ${api.url}/graphql: the connection failed or was refused` });
      // The preflight failed, so the browser never sent the mutation.
      const listedTasks = await api.gql<{ tasks: { nodes: Array<{ title: string }> } }>('{ tasks(first: 100) { nodes { title } } }', {}, { authorization: `Bearer ${token}` });
      expect(listedTasks.body.data!.tasks.nodes.map((t) => t.title)).not.toContain('Made by a stranger');
      await page.context().close();
    }, 60_000);
  },
);
