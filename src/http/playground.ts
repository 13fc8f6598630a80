/**
 * The self-hosted playground: GraphiQL bundled at install time into playground/dist and served from here, at
 * `/playground` and at `GET /graphql` for browsers (an HTML `Accept` and no query). No request leaves the machine.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { PROJECT_ROOT } from '../db/orm.js';

const DIST = path.join(PROJECT_ROOT, 'playground', 'dist');

const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>task-tracker playground</title>
    <link rel="stylesheet" href="/playground/assets/playground.css" />
    <style>html, body, #graphiql { height: 100%; margin: 0; }</style>
  </head>
  <body>
    <div id="graphiql">Loading the playground...</div>
    <script type="module" src="/playground/assets/playground.js"></script>
  </body>
</html>
`;

const MISSING = `<!doctype html><meta charset="utf-8"><title>playground not built</title>
<p>The playground has not been bundled. Run <code>npm run build:playground</code> (it runs on <code>npm install</code>).</p>`;

const ASSETS: Record<string, string> = { 'playground.js': 'text/javascript; charset=utf-8', 'playground.css': 'text/css; charset=utf-8' };

/** Wants a page rather than a GraphQL result: a browser navigating to /graphql. */
function wantsPage(accept: string | undefined, url: string): boolean {
  return (accept ?? '').includes('text/html') && !/[?&]query=/.test(url);
}

/** Adds the playground routes to `app` (before it listens). */
export function registerPlayground(app: FastifyInstance): void {
  // Read once: the bundle does not change while the server runs.
  const files = new Map<string, Buffer>();
  for (const name of Object.keys(ASSETS)) {
    const file = path.join(DIST, name);
    if (existsSync(file)) files.set(name, readFileSync(file));
  }
  const built = files.size === Object.keys(ASSETS).length;
  const page = built ? PAGE : MISSING;
  const security = {
    'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'",
    'x-content-type-options': 'nosniff',
  };

  app.get('/playground', async (_req, reply) => reply.code(built ? 200 : 503).headers(security).type('text/html; charset=utf-8').send(page));
  app.get<{ Params: { name: string } }>('/playground/assets/:name', async (req, reply) => {
    const body = files.get(req.params.name);
    const type = ASSETS[req.params.name];
    if (!body || !type) return reply.code(404).type('application/json; charset=utf-8').send({ errors: [{ message: 'No such asset', extensions: { code: 'NOT_FOUND' } }] });
    return reply.headers({ ...security, 'cache-control': 'public, max-age=3600' }).type(type).send(body);
  });
  app.addHook('onRequest', async (req, reply) => {
    if (req.method !== 'GET' || !req.url.startsWith('/graphql') || !wantsPage(req.headers.accept, req.url)) return;
    return reply.code(built ? 200 : 503).headers(security).type('text/html; charset=utf-8').send(page);
  });
}
