import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startServer, type TestServer } from '../helpers/server.js';

const SECRET = 'a-test-secret-that-is-long-enough-for-hs256';
const ISSUER = 'https://issuer.test';
const AUDIENCE = 'task-tracker';

let db: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase('auth');
  server = await startServer(db.url, { AUTH_JWT_SECRET: SECRET, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE });
});
afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

async function hs256(claims: JWTPayload, { expiresIn = '5m', secret = SECRET, issuer = ISSUER, audience = AUDIENCE } = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setIssuer(issuer).setAudience(audience).setExpirationTime(expiresIn).sign(new TextEncoder().encode(secret));
}

async function post(query: string, token?: string) {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as { data?: Record<string, unknown> | null; errors?: Array<{ message: string; extensions: Record<string, unknown> }> } };
}

async function taskCount(): Promise<number> {
  const c = await db.client();
  const { rows } = await c.query<{ n: number }>('select count(*)::int as n from task');
  await c.end();
  return rows[0]!.n;
}

describe('authentication with an HS256 secret', () => {
  it('answers 401 UNAUTHENTICATED without a token, or with a bad one', async () => {
    const cases: Array<[string, string | undefined]> = [
      ['no token', undefined],
      ['garbage', 'not.a.jwt'],
      ['wrong key', await hs256({ sub: 'ada', scope: 'tasks:write' }, { secret: 'another-secret-that-is-also-long-enough' })],
      ['expired', await hs256({ sub: 'ada' }, { expiresIn: '-1m' })],
      ['wrong issuer', await hs256({ sub: 'ada' }, { issuer: 'https://evil.test' })],
      ['wrong audience', await hs256({ sub: 'ada' }, { audience: 'someone-else' })],
      ['no subject', await hs256({ scope: 'tasks:write' })],
    ];
    for (const [what, token] of cases) {
      const res = await post('{ tasks { nodes { id } } }', token);
      expect(res.status, what).toBe(401);
      expect(res.headers.get('www-authenticate'), what).toBe('Bearer');
      expect(res.body.errors?.[0]?.extensions.code, what).toBe('UNAUTHENTICATED');
    }
  });

  it('lets a token without tasks:write read but not change anything (FORBIDDEN)', async () => {
    const reader = await hs256({ sub: 'reader', scope: 'tasks:read' });
    expect((await post('{ tasks { nodes { id } } }', reader)).body.errors).toBeUndefined();
    const before = await taskCount();
    const res = await post('mutation { createTask(input: { title: "nope" }) { id } }', reader);
    expect(res.status).toBe(403);
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', scope: 'tasks:write' });
    expect(await taskCount()).toBe(before);
  });

  it('takes createdBy and every event actor from the token subject, never from input', async () => {
    const writer = await hs256({ sub: 'grace', scope: 'tasks:read tasks:write' });
    const created = await post('mutation { createTask(input: { title: "mine", createdBy: "mallory" }) { id createdBy } }', writer);
    expect(created.body.errors).toBeUndefined();
    const task = created.body.data!.createTask as { id: string; createdBy: string };
    expect(task.createdBy).toBe('grace');
    await post(`mutation { updateTask(id: "${task.id}", input: { title: "changed" }) { id } }`, await hs256({ sub: 'hopper', scp: ['tasks:write'] }));
    const events = await post(`{ task(id: "${task.id}") { events { nodes { kind actor } } } }`, writer);
    expect((events.body.data!.task as { events: { nodes: unknown[] } }).events.nodes).toEqual([
      { kind: 'CREATED', actor: 'grace' },
      { kind: 'UPDATED', actor: 'hopper' },
    ]);
  });

  it('keeps health, readiness and metrics reachable without a token', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics']) expect((await fetch(`${server.url}${path}`)).status, path).toBe(200);
  });
});

describe('authentication with a JWKS', () => {
  let jwks: Server;
  let jwksServer: TestServer;
  let rsa: Awaited<ReturnType<typeof generateKeyPair>>;
  let ec: Awaited<ReturnType<typeof generateKeyPair>>;

  beforeAll(async () => {
    rsa = await generateKeyPair('RS256');
    ec = await generateKeyPair('ES256');
    const keys = [
      { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
      { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
    ];
    jwks = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys })));
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    const port = (jwks.address() as AddressInfo).port;
    jwksServer = await startServer(db.url, { AUTH_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json` });
  });
  afterAll(async () => {
    await jwksServer?.stop();
    await new Promise((r) => jwks?.close(r));
  });

  type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  const sign = (alg: 'RS256' | 'ES256', kid: string, key: PrivateKey) =>
    new SignJWT({ sub: `${alg}-user`, scope: 'tasks:write' }).setProtectedHeader({ alg, kid }).setIssuedAt().setExpirationTime('5m').sign(key);

  it('accepts RS256 and ES256 tokens signed by the published keys, and refuses an HS256 token', async () => {
    for (const [alg, kid, key] of [['RS256', 'rsa-1', rsa.privateKey], ['ES256', 'ec-1', ec.privateKey]] as const) {
      const token = await sign(alg, kid, key);
      const res = await fetch(`${jwksServer.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: 'mutation { createTask(input: { title: "jwks" }) { createdBy } }' }),
      });
      expect(await res.json()).toEqual({ data: { createTask: { createdBy: `${alg}-user` } } });
    }
    const forged = await hs256({ sub: 'forger', scope: 'tasks:write' });
    const res = await fetch(`${jwksServer.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${forged}` },
      body: JSON.stringify({ query: '{ tasks { nodes { id } } }' }),
    });
    expect(res.status).toBe(401);
  });
});

describe('authentication off', () => {
  it('warns at boot when NODE_ENV=production and no auth setting is given', async () => {
    const open = await startServer(db.url, { NODE_ENV: 'production' });
    try {
      expect(open.logs.some((l) => l.level === 'warn' && String(l.msg).startsWith('authentication is off'))).toBe(true);
    } finally {
      await open.stop();
    }
  });
});
