import { describe, expect, it } from 'vitest';
import { waitFor, useServer } from './helpers/server.js';

const { db, server } = useServer('http', { MAX_BODY_BYTES: '4096', NODE_ENV: 'production' });

const post = (body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
  fetch(`${server.url}/graphql`, { method: 'POST', headers, body });

describe('HTTP surface', () => {
  it('answers /healthz and /readyz with 200 once ready', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('echoes a well-formed x-request-id and replaces a malformed one', async () => {
    const echoed = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'abc.DEF_123-x' } });
    expect(echoed.headers.get('x-request-id')).toBe('abc.DEF_123-x');
    for (const bad of ['has space', 'x'.repeat(129), 'semi;colon']) {
      const res = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': bad },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    }
    const none = await fetch(`${server.url}/readyz`);
    expect(none.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('reports health with a real database round trip and pool statistics', async () => {
    const res = await server.gql<{ health: { status: string; database: boolean; responseTimeMs: number; pool: Record<string, number> } }>(
      '{ health { status database responseTimeMs pool { size used free pending max } } }',
    );
    const h = res.body.data!.health;
    expect(h).toMatchObject({ status: 'ok', database: true });
    expect(h.responseTimeMs).toBeGreaterThan(0);
    expect(h.pool.max).toBe(10);
    expect(h.pool.size).toBe(h.pool.used! + h.pool.free!);
    expect(h.pool.size).toBeGreaterThanOrEqual(1);
  });

  it('masks an unexpected error: no SQL, no driver text, no stack; logs it with the request id', async () => {
    const c = await db.client();
    const created = await server.gql<{ createTask: { id: string } }>('mutation { createTask(input: { title: "doomed" }) { id } }');
    const id = created.body.data!.createTask.id;
    await c.query('alter table task rename to task_gone');
    try {
      const res = await server.gql(`{ task(id: "${id}") { id description } }`, {}, { 'x-request-id': 'masked-1' });
      const err = res.body.errors?.[0];
      expect(err?.message).toBe('Internal server error');
      expect(err?.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR' });
      expect(JSON.stringify(res.body)).not.toMatch(/task_gone|relation|select|stack|\.ts/i);
      const logged = await waitFor(() => server.logs.find((l) => l.requestId === 'masked-1' && l.level === 'error'), 'the error log line');
      expect(JSON.stringify(logged)).toMatch(/relation \\"task\\" does not exist/);
    } finally {
      await c.query('alter table task_gone rename to task');
    }
  });

  it('keeps deliberate errors as they are, without stacks outside development', async () => {
    const res = await server.gql('{ task(id: "nope") { id } }');
    expect(res.body.errors?.[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'id' });
  });

  it('gives parse and validation errors their codes with HTTP 400', async () => {
    const parse = await post(JSON.stringify({ query: '{ tasks {' }));
    expect(parse.status).toBe(400);
    expect(((await parse.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]!.extensions.code).toBe('GRAPHQL_PARSE_FAILED');
    const invalid = await post(JSON.stringify({ query: '{ nope }' }));
    expect(invalid.status).toBe(400);
    const body = (await invalid.json()) as { errors: Array<{ message: string; extensions: { code: string } }> };
    expect(body.errors[0]!.extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(body.errors[0]!.message).not.toMatch(/Did you mean/);
  });

  it('refuses a body that is not JSON, a batch, and a GET without the CSRF header with 400', async () => {
    expect((await post('{ __typename }', { 'content-type': 'text/plain' })).status).toBe(400);
    expect((await post('[{"query":"{ __typename }"}]')).status).toBe(400);
    expect((await post('{"query": ', { 'content-type': 'application/json' })).status).toBe(400);
    const get = await fetch(`${server.url}/graphql?query=${encodeURIComponent('{ __typename }')}`);
    expect(get.status).toBe(400);
  });

  it('runs queries over GET with a preflight header, never mutations', async () => {
    const headers = { 'apollo-require-preflight': 'true' };
    const q = await fetch(`${server.url}/graphql?query=${encodeURIComponent('{ health { database } }')}`, { headers });
    expect(q.status).toBe(200);
    expect(await q.json()).toEqual({ data: { health: { database: true } } });
    const m = await fetch(`${server.url}/graphql?query=${encodeURIComponent('mutation { createTask(input: {title: "x"}) { id } }')}`, { headers });
    expect(m.status).toBe(405);
  });

  it('answers a body over MAX_BODY_BYTES with 413 and a JSON error', async () => {
    const res = await post(JSON.stringify({ query: `{ __typename }`, variables: { pad: 'x'.repeat(5000) } }));
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(((await res.json()) as { errors: unknown[] }).errors).toHaveLength(1);
  });

  it('answers unknown routes with a JSON 404', async () => {
    const res = await fetch(`${server.url}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ errors: [{ extensions: { code: 'NOT_FOUND' } }] });
  });
});
