/**
 * CORS_ORIGINS at the HTTP level, without a browser (test/browser/cors.test.ts has one): preflights and responses
 * as a browser would send and read them, the WebSocket upgrade's origin check, the same server with CORS off, and
 * how the variable is validated at boot.
 */
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { CORS_ALLOWED_HEADERS } from '../../src/http/cors.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startServer, type TestServer } from '../helpers/server.js';

const APP = 'http://app.test:5173';
const OTHER = 'https://evil.test';
let db: TestDatabase;
let on: TestServer;
let off: TestServer;
let any: TestServer;

beforeAll(async () => {
  db = await createTestDatabase('cors');
  // Servers on one database: CORS on (two origins, with credentials), off, and `*`.
  on = await startServer(db.url, { CORS_ORIGINS: `${APP}, https://admin.test`, CORS_CREDENTIALS: 'true', MAX_BODY_BYTES: '65536' });
  off = await startServer(db.url);
  any = await startServer(db.url, { CORS_ORIGINS: '*' });
});
afterAll(async () => {
  await on?.stop();
  await off?.stop();
  await any?.stop();
  await db?.drop();
});

/** The response's Access-Control-* headers, by name. */
function corsHeaders(res: Response): Record<string, string> {
  return Object.fromEntries([...res.headers].filter(([name]) => name.startsWith('access-control-')));
}

function preflight(server: TestServer, origin: string | undefined, headers: Record<string, string> = {}) {
  return fetch(`${server.url}/graphql`, {
    method: 'OPTIONS',
    headers: {
      ...(origin ? { origin } : {}),
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type,authorization,x-min-lsn,x-request-id,apollo-require-preflight',
      ...headers,
    },
  });
}

function post(server: TestServer, origin: string | undefined, body = JSON.stringify({ query: '{ __typename }' })) {
  return fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...(origin ? { origin } : {}) }, body });
}

describe('CORS_ORIGINS set: HTTP', () => {
  it('answers a listed origin\'s preflight with 204 and what browsers need', async () => {
    const res = await preflight(on, APP);
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');
    const cors = corsHeaders(res);
    expect(cors['access-control-allow-origin']).toBe(APP);
    expect(cors['access-control-allow-methods']).toBe('GET, POST');
    expect(cors['access-control-allow-headers']?.split(', ')).toEqual(expect.arrayContaining(['content-type', 'authorization', 'apollo-require-preflight', 'x-request-id', 'x-min-lsn']));
    expect(cors['access-control-allow-headers']?.split(', ')).toEqual([...CORS_ALLOWED_HEADERS]);
    expect(cors['access-control-max-age']).toBe('600');
    expect(cors['access-control-allow-credentials']).toBe('true');
    expect(res.headers.get('vary')).toMatch(/\borigin\b/i);
    expect(res.headers.get('x-request-id')).toBeTruthy(); // like every response
    // The second listed origin too, echoed as itself.
    expect((await preflight(on, 'https://admin.test')).headers.get('access-control-allow-origin')).toBe('https://admin.test');
  });

  it('gives an unlisted origin, or an OPTIONS that is not a preflight, no CORS header: the 405 of any OPTIONS', async () => {
    for (const res of [await preflight(on, OTHER), await preflight(on, undefined), await fetch(`${on.url}/graphql`, { method: 'OPTIONS', headers: { origin: APP } })]) {
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('GET, POST');
      expect(corsHeaders(res)).toEqual({});
      expect(await res.json()).toMatchObject({ errors: [{ extensions: { code: 'BAD_REQUEST' } }] });
    }
    // An origin differing only in scheme, port or case is another origin.
    for (const origin of ['https://app.test:5173', 'http://app.test:5174', 'http://APP.test:5173', 'http://app.test:5173/']) {
      expect(corsHeaders(await preflight(on, origin)), origin).toEqual({});
    }
  });

  it('lets a listed origin read responses and the x-request-id and x-min-lsn headers, errors included', async () => {
    const ok = await post(on, APP);
    expect(ok.status).toBe(200);
    expect(corsHeaders(ok)).toEqual({
      'access-control-allow-origin': APP,
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'x-request-id, x-min-lsn, retry-after',
    });
    expect(ok.headers.get('x-request-id')).toBeTruthy();
    // Refusals of the HTTP layer (before Apollo) and of Apollo carry the headers too, so a page can read why.
    const badJson = await post(on, APP, '{');
    expect(badJson.status).toBe(400);
    expect(corsHeaders(badJson)['access-control-allow-origin']).toBe(APP);
    const csrf = await fetch(`${on.url}/graphql?query=${encodeURIComponent('{ __typename }')}`, { headers: { origin: APP } });
    expect(csrf.status).toBe(400); // Apollo's CSRF prevention, as before: a GET needs apollo-require-preflight
    expect(corsHeaders(csrf)['access-control-allow-origin']).toBe(APP);
    // Refused by our own onRequest hook: the CORS hook runs before it.
    const compressed = await fetch(`${on.url}/graphql`, { method: 'POST', headers: { origin: APP, 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: '{}' });
    expect(compressed.status).toBe(415);
    expect(corsHeaders(compressed)['access-control-allow-origin']).toBe(APP);
    const notFound = await fetch(`${on.url}/nope`, { headers: { origin: APP } });
    expect(notFound.status).toBe(404);
    expect(corsHeaders(notFound)['access-control-allow-origin']).toBe(APP);
    // Refused below Fastify, before the body is read: the same headers, so a page learns it sent too much.
    const tooLarge = await post(on, APP, JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(100_000) } }));
    expect(tooLarge.status).toBe(413);
    expect(corsHeaders(tooLarge)).toEqual({
      'access-control-allow-origin': APP,
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'x-request-id, x-min-lsn, retry-after',
    });
    expect(corsHeaders(await post(on, OTHER, JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(100_000) } })))).toEqual({});
  });

  it('answers an unlisted origin without CORS headers, so its browser keeps the response from the page', async () => {
    const res = await post(on, OTHER);
    expect(res.status).toBe(200);
    expect(corsHeaders(res)).toEqual({});
  });
});

describe('CORS_ORIGINS=*', () => {
  it('lets every origin in, with `*` rather than the origin echoed, and never credentials', async () => {
    const pre = await preflight(any, OTHER);
    expect(pre.status).toBe(204);
    expect(corsHeaders(pre)).toMatchObject({ 'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET, POST' });
    expect(corsHeaders(pre)['access-control-allow-credentials']).toBeUndefined();
    expect(corsHeaders(await post(any, OTHER))['access-control-allow-origin']).toBe('*');
    expect(corsHeaders(await post(any, undefined))).toEqual({});
    expect((await upgrade(any, OTHER)).status).toBe(101);
  });
});

describe('CORS_ORIGINS unset: no CORS at all', () => {
  it('sends no Access-Control-* header, and OPTIONS is the 405 it was', async () => {
    const pre = await preflight(off, APP);
    expect(pre.status).toBe(405);
    expect(pre.headers.get('allow')).toBe('GET, POST');
    for (const res of [pre, await post(off, APP), await fetch(`${off.url}/healthz`, { headers: { origin: APP } }), await fetch(`${off.url}/nope`, { method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'GET' } })]) {
      expect(corsHeaders(res)).toEqual({});
      expect(res.headers.get('vary') ?? '').not.toMatch(/origin/i);
    }
  });
});

/** Opens a WebSocket to /graphql as a browser on `origin` would; resolves with the upgrade's outcome. */
function upgrade(server: TestServer, origin: string | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws', origin ? { origin } : {});
    ws.once('open', () => {
      ws.close();
      resolve({ status: 101, body: '' });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', (err) => reject(err));
  });
}

describe('the WebSocket upgrade', () => {
  it('with CORS_ORIGINS: refuses an unlisted browser origin with 403, takes listed ones, its own, and clients without Origin', async () => {
    const refused = await upgrade(on, OTHER);
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body)).toMatchObject({ errors: [{ message: expect.stringContaining('CORS_ORIGINS') as string, extensions: { code: 'FORBIDDEN' } }] });
    expect((await upgrade(on, 'http://app.test:5174')).status).toBe(403);
    expect((await upgrade(on, APP)).status).toBe(101);
    expect((await upgrade(on, undefined)).status).toBe(101);
    // The server's own origin: the playground it serves subscribes from there.
    expect((await upgrade(on, on.url)).status).toBe(101);
  });

  it('without CORS_ORIGINS: takes every origin, as before', async () => {
    expect((await upgrade(off, OTHER)).status).toBe(101);
  });
});

describe('CORS_ORIGINS and CORS_CREDENTIALS at boot', () => {
  const load = (env: Record<string, string>) => loadConfig({ DATABASE_URL: 'postgres://u@localhost/db', ...env });
  const refusal = (env: Record<string, string>) => {
    try {
      load(env);
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error('the configuration was accepted');
  };

  it('is off by default, and reads a list of exact origins or *', () => {
    expect(load({}).cors).toBeUndefined();
    expect(load({ CORS_ORIGINS: '' }).cors).toBeUndefined();
    expect(load({ CORS_ORIGINS: ' https://app.example.com , http://localhost:5173,,capacitor://localhost ' }).cors).toEqual({
      origins: ['https://app.example.com', 'http://localhost:5173', 'capacitor://localhost'],
      credentials: false,
    });
    expect(load({ CORS_ORIGINS: '*' }).cors).toEqual({ origins: '*', credentials: false });
    expect(load({ CORS_ORIGINS: 'https://app.example.com', CORS_CREDENTIALS: 'true' }).cors).toEqual({ origins: ['https://app.example.com'], credentials: true });
  });

  it('refuses what a browser never sends as an origin, with one line naming the variable', () => {
    expect(refusal({ CORS_ORIGINS: 'https://app.example.com/' })).toBe(
      'Invalid CORS_ORIGINS (got "https://app.example.com/"): "https://app.example.com/" is not written as a browser sends it, which must match exactly: https://app.example.com',
    );
    expect(refusal({ CORS_ORIGINS: 'https://App.Example.com:443' })).toMatch(/^Invalid CORS_ORIGINS \(got "https:\/\/App\.Example\.com:443"\): .* must match exactly: https:\/\/app\.example\.com$/);
    for (const bad of ['https://app.example.com/app', 'app.example.com', 'https://user:pw@app.example.com', 'http://localhost:5173?x=1', 'http://a.test, localhost:3000']) {
      expect(refusal({ CORS_ORIGINS: bad }), bad).toMatch(/^Invalid CORS_ORIGINS \(got .*\): ".*" is not an origin: expected scheme:\/\/host\[:port\]/);
    }
    expect(refusal({ CORS_ORIGINS: 'null' })).toMatch(/^Invalid CORS_ORIGINS \(got "null"\): "null" is the origin of sandboxed pages/);
    expect(refusal({ CORS_ORIGINS: '*,https://app.example.com' })).toMatch(/^Invalid CORS_ORIGINS .*: \* allows every origin, so it stands alone/);
    expect(refusal({ CORS_ORIGINS: ' , ' })).toMatch(/^Invalid CORS_ORIGINS \(got " , "\): expected origins separated by commas/);
  });

  it('refuses * with credentials, and credentials without origins', () => {
    expect(refusal({ CORS_ORIGINS: '*', CORS_CREDENTIALS: 'true' })).toBe(
      'Invalid CORS_ORIGINS (got "*"): * cannot go with CORS_CREDENTIALS=true; list the origins that may send credentials',
    );
    expect(refusal({ CORS_CREDENTIALS: 'true' })).toMatch(/^Invalid CORS_CREDENTIALS \(got "true"\): .*CORS_ORIGINS, which is not set$/);
    expect(refusal({ CORS_ORIGINS: 'https://a.test', CORS_CREDENTIALS: 'maybe' })).toMatch(/^Invalid CORS_CREDENTIALS \(got "maybe"\)/);
  });
});
