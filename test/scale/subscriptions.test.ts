/**
 * Subscriptions on one in-process server, over a real WebSocket (graphql-ws client) and real HTTP: live delivery,
 * replay from a cursor merged with the live stream, filters, the checks every operation passes, authentication,
 * and shutdown with subscribers connected.
 */
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startServer, useServer, waitFor, type TestServer } from '../helpers/server.js';
import { gauge, subscribe, waitForSubscriptions, type ReceivedEvent, type Subscription } from '../helpers/ws.js';

const { db, server } = useServer('subscriptions');
const open: Subscription[] = [];
afterAll(async () => {
  await Promise.all(open.map((s) => s.dispose()));
});
const watch = (url: string, options: Parameters<typeof subscribe>[1] = {}) => {
  const s = subscribe(url, options);
  open.push(s);
  return s;
};

async function createTask(title: string, target: TestServer = server): Promise<string> {
  const res = await target.gql<{ createTask: { id: string } }>('mutation($t: String!) { createTask(input: { title: $t }) { id } }', { t: title });
  expect(res.body.errors).toBeUndefined();
  return res.body.data!.createTask.id;
}

/** The feed as `Query.taskEvents` lists it, after `after`. */
async function feed(after: string | null): Promise<Array<{ id: string; cursor: string }>> {
  const out: Array<{ id: string; cursor: string }> = [];
  let cursor = after;
  for (;;) {
    const res = await server.gql<{ taskEvents: { nodes: Array<{ id: string; cursor: string }>; pageInfo: { hasNextPage: boolean; endCursor: string | null } } }>(
      'query($after: String) { taskEvents(after: $after, first: 100) { nodes { id cursor } pageInfo { hasNextPage endCursor } } }',
      { after: cursor },
    );
    out.push(...res.body.data!.taskEvents.nodes);
    if (!res.body.data!.taskEvents.pageInfo.hasNextPage) return out;
    cursor = res.body.data!.taskEvents.pageInfo.endCursor;
  }
}

const ids = (events: ReceivedEvent[]) => events.map((e) => e.id);

/**
 * The feed's head once it holds `taskId`'s latest event. A stream without `after` starts at the instance's "now",
 * which may still be before an event that is committed but held back (a transaction anywhere in the cluster is
 * still running); tests that must not see earlier events subscribe after this cursor instead.
 */
async function headAfter(taskId: string): Promise<string> {
  const url = server.url;
  return waitFor(async () => {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ taskEvents(last: 1) { nodes { taskId cursor } } }' }),
    });
    const body = (await res.json()) as { data: { taskEvents: { nodes: Array<{ taskId: string; cursor: string }> } } };
    const last = body.data.taskEvents.nodes[0];
    return last?.taskId === taskId ? last.cursor : undefined;
  }, 'the feed to settle');
}

describe('live delivery', () => {
  it('delivers a mutation made over HTTP to a subscriber, with the task, its cursor and the connection request id', async () => {
    const sub = watch(server.url, { headers: { 'x-request-id': 'ws-conn-1' }, select: 'task { id title version }' });
    await sub.connected;
    await waitForSubscriptions(server.url, 1);
    const id = await createTask('live one');
    const [event] = await sub.waitForEvents(1);
    expect(event).toMatchObject({ taskId: id, kind: 'CREATED', actor: 'anonymous', task: { id, title: 'live one', version: 1 } });
    const [head] = await feed(null).then((all) => all.slice(-1));
    expect(event!.cursor).toBe(head!.cursor);
    expect(server.logs.some((l) => l.msg === 'subscription started' && l.requestId === 'ws-conn-1')).toBe(true);

    // A later event resolves the task afresh (each event gets a new context), not from the first one's cache.
    await server.gql(`mutation { updateTask(id: "${id}", input: { title: "renamed" }) { id } }`);
    const events = await sub.waitForEvents(2);
    expect(events[1]).toMatchObject({ kind: 'UPDATED', task: { title: 'renamed', version: 2 } });
    await sub.dispose();
    await waitForSubscriptions(server.url, 0);
  });

  it('replays from a cursor, then continues live, with no gap and no duplicate, across several pages', async () => {
    await createTask('replay anchor');
    const anchor = (await feed(null)).at(-1)!;
    // 600 events: more than one page (500) of the hub's reads.
    for (let batch = 0; batch < 6; batch++) {
      const inputs = Array.from({ length: 100 }, (_, i) => ({ title: `bulk ${batch}-${i}` }));
      const res = await server.gql('mutation($inputs: [CreateTaskInput!]!) { createTasks(inputs: $inputs) { id } }', { inputs });
      expect(res.body.errors).toBeUndefined();
    }
    const expected = await feed(anchor.cursor);
    const sub = watch(server.url, { variables: { after: anchor.cursor } });
    await sub.waitForEvents(expected.length);
    // Live events arrive while (or after) the replay runs.
    const late = [await createTask('after replay 1'), await createTask('after replay 2')];
    const all = await sub.waitForEvents(expected.length + 2);
    const wanted = await feed(anchor.cursor);
    expect(ids(all)).toEqual(wanted.map((e) => e.id));
    expect(new Set(ids(all)).size).toBe(all.length);
    expect(all.slice(-2).map((e) => e.taskId)).toEqual(late);
    await sub.dispose();
    await waitForSubscriptions(server.url, 0);
  });

  it('resumes with the last cursor after a disconnect and misses nothing', async () => {
    const sub = watch(server.url, { variables: { after: await headAfter(await createTask('earlier')) } });
    await createTask('before disconnect');
    const [seen] = await sub.waitForEvents(1);
    await sub.dispose();
    const missed = [await createTask('while away 1'), await createTask('while away 2')];
    const again = watch(server.url, { variables: { after: seen!.cursor } });
    const events = await again.waitForEvents(2);
    expect(events.map((e) => e.taskId)).toEqual(missed);
    await again.dispose();
  });

  it('filters by taskId and by kinds', async () => {
    const id = await createTask('filtered');
    const other = await createTask('not this one');
    const after = await headAfter(other);
    const byTask = watch(server.url, { variables: { taskId: id, after } });
    const byKind = watch(server.url, { variables: { kinds: ['STATUS_CHANGED'], after } });
    await server.gql(`mutation { startTask(id: "${other}") { id } }`);
    await server.gql(`mutation { updateTask(id: "${id}", input: { title: "filtered 2" }) { id } }`);
    await server.gql(`mutation { startTask(id: "${id}") { id } }`);
    expect((await byTask.waitForEvents(2)).map((e) => [e.taskId, e.kind])).toEqual([
      [id, 'UPDATED'],
      [id, 'STATUS_CHANGED'],
    ]);
    expect((await byKind.waitForEvents(2)).map((e) => [e.taskId, e.kind])).toEqual([
      [other, 'STATUS_CHANGED'],
      [id, 'STATUS_CHANGED'],
    ]);
    await Promise.all([byTask.dispose(), byKind.dispose()]);
  });
});

describe('the checks every operation passes', () => {
  const errorOf = async (options: Parameters<typeof subscribe>[1]) => {
    const sub = watch(server.url, options);
    await waitFor(() => sub.errors.length > 0, 'an error');
    return sub.errors[0]!;
  };

  it('refuses a malformed cursor, a malformed taskId, and an invalid operation with their codes', async () => {
    expect((await errorOf({ variables: { after: 'nope' } })).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
    expect((await errorOf({ variables: { taskId: 'x' } })).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'taskId' });
    expect((await errorOf({ query: 'subscription { taskEvents { nope } }' })).extensions).toMatchObject({ code: 'GRAPHQL_VALIDATION_FAILED' });
    expect((await errorOf({ query: 'subscription {' })).extensions).toMatchObject({ code: 'GRAPHQL_PARSE_FAILED' });
  });

  it('runs only subscriptions over WebSocket, and subscriptions only over WebSocket', async () => {
    const err = await errorOf({ query: '{ tasks { nodes { id } } }' });
    expect(err.extensions).toMatchObject({ code: 'BAD_REQUEST' });
    expect(err.message).toMatch(/over HTTP POST/);
    const res = await server.gql('subscription { taskEvents { id } }');
    expect(res.status).toBe(400);
    expect(res.body.errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
    expect(res.body.errors?.[0]?.message).toMatch(/WebSocket/);
  });

  it('applies the depth limit (MAX_QUERY_DEPTH)', async () => {
    const nested = 'task { parent { parent { parent { parent { parent { parent { parent { parent { parent { parent { id } } } } } } } } } } }';
    const err = await errorOf({ query: `subscription { taskEvents { ${nested} } }` });
    expect(err.extensions).toMatchObject({ code: 'QUERY_TOO_COMPLEX', setting: 'MAX_QUERY_DEPTH' });
  });
});

describe('metrics', () => {
  it('shows active subscriptions and the listener state', async () => {
    expect(await gauge(server.url, 'subscription_listener_up')).toBe(1);
    const before = await gauge(server.url, 'graphql_subscriptions_active');
    const sub = watch(server.url);
    await waitForSubscriptions(server.url, before + 1);
    await sub.dispose();
    await waitForSubscriptions(server.url, before);
  });
});

const SECRET = 'a-test-secret-that-is-long-enough-for-hs256';
const token = (sub: string, scope = 'tasks:read') =>
  new SignJWT({ sub, scope }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));

describe('with authentication on', () => {
  let secured: TestServer;
  beforeAll(async () => {
    secured = await startServer(db.url, { AUTH_JWT_SECRET: SECRET, RATE_LIMIT_POINTS_PER_MINUTE: '12' });
  });
  afterAll(async () => {
    await secured?.stop();
  });

  it('closes the socket with 4401 without a token or with a bad one', async () => {
    for (const bad of [undefined, 'not.a.jwt']) {
      const sub = watch(secured.url, { token: bad });
      const closed = await sub.waitForClose();
      expect(closed.code).toBe(4401);
      expect(closed.reason).toMatch(/^Unauthorized/);
      expect(sub.events).toEqual([]);
    }
  });

  it('accepts the bearer token in connection_init or in the upgrade header, and records the actor', async () => {
    const viaInit = watch(secured.url, { token: await token('reader-1') });
    const viaHeader = watch(secured.url, { headers: { authorization: `Bearer ${await token('reader-2')}` } });
    await waitForSubscriptions(secured.url, 2);
    const writer = await token('writer', 'tasks:read tasks:write');
    const res = await secured.gql('mutation { createTask(input: { title: "secured" }) { id } }', {}, { authorization: `Bearer ${writer}` });
    expect(res.body.errors).toBeUndefined();
    expect((await viaInit.waitForEvents(1))[0]).toMatchObject({ kind: 'CREATED', actor: 'writer' });
    expect((await viaHeader.waitForEvents(1))[0]).toMatchObject({ kind: 'CREATED', actor: 'writer' });
    await Promise.all([viaInit.dispose(), viaHeader.dispose()]);
  });

  it("takes each subscription's cost from the caller's rate budget", async () => {
    const caller = await token('limited');
    const first = watch(secured.url, { token: caller, query: 'subscription { taskEvents { id taskId kind actor cursor changes } }' });
    await waitForSubscriptions(secured.url, 1);
    const second = watch(secured.url, { token: caller, query: 'subscription { taskEvents { id taskId kind actor cursor changes } }' });
    await waitFor(() => second.errors.length > 0, 'the second subscription to be refused');
    expect(second.errors[0]!.extensions).toMatchObject({ code: 'RATE_LIMITED' });
    await first.dispose();
  });
});

describe('shutdown with subscribers connected', () => {
  it('closes every socket with 1001 and stops within bounds; no upgrade is taken while draining', async () => {
    const target = await startServer(db.url, { SHUTDOWN_GRACE_MS: '5000' });
    const subs = [watch(target.url), watch(target.url)];
    await waitForSubscriptions(target.url, 2);
    const started = Date.now();
    const stopping = target.app.stop();
    await waitFor(() => target.app.state() !== 'ready', 'draining');
    const late = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${target.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => resolve(-1));
    });
    expect([503, -1]).toContain(late); // refused, or the listening socket is already closed
    expect(await stopping).toEqual({ clean: true });
    expect(Date.now() - started).toBeLessThan(5000);
    for (const sub of subs) expect((await sub.waitForClose()).code).toBe(1001);
    expect(target.logs.some((l) => l.msg === 'WebSocket connections closed (1001 Going Away)')).toBe(true);
  });
});
