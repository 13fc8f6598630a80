/**
 * A WebSocket connection is authenticated once, at `connection_init`, so the server closes it with 4401 when its
 * token's `exp` passes; the client reconnects with a fresh token and resumes with `after`. A real server in-process
 * over a real PostgreSQL, a real WebSocket (graphql-ws client), real HS256 tokens.
 */
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { watchTaskEvents, type TaskTrackerError, type WatchedTaskEvent } from '@task-tracker/client';
import { waitFor } from '../helpers/server.js';
import { useServer } from '../helpers/server.js';
import { subscribe, waitForSubscriptions, type Subscription } from '../helpers/ws.js';

const SECRET = 'a-test-secret-that-is-long-enough-for-hs256';
const { server } = useServer('ws_expiry', { AUTH_JWT_SECRET: SECRET });

/** A token for `sub`; `exp` in seconds since the epoch, or none at all. */
function token(sub: string, exp: number | undefined, scope = 'tasks:read'): Promise<string> {
  const jwt = new SignJWT({ sub, scope }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt();
  if (exp !== undefined) jwt.setExpirationTime(exp);
  return jwt.sign(new TextEncoder().encode(SECRET));
}
const nowSeconds = () => Math.floor(Date.now() / 1000);

const open: Subscription[] = [];
const watch = (options: Parameters<typeof subscribe>[1]) => {
  const s = subscribe(server.url, options);
  open.push(s);
  return s;
};
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.dispose()));
  await waitForSubscriptions(server.url, 0);
});

async function createTask(title: string): Promise<string> {
  const writer = await token('writer', nowSeconds() + 300, 'tasks:read tasks:write');
  const res = await server.gql<{ createTask: { id: string } }>('mutation($t: String!) { createTask(input: { title: $t }) { id } }', { t: title }, { authorization: `Bearer ${writer}` });
  expect(res.body.errors).toBeUndefined();
  return res.body.data!.createTask.id;
}

describe('a WebSocket connection and its token', () => {
  it('is closed with 4401 when the token expires, and a fresh token resumes from the last cursor', async () => {
    // Two to three seconds ahead: `exp` has whole seconds.
    const exp = Math.ceil(Date.now() / 1000) + 2;
    const expMs = exp * 1000;
    const expiring = watch({ token: await token('short-lived', exp) });
    let closedAt: number | undefined;
    expiring.client.on('closed', () => (closedAt ??= Date.now()));
    // The witness sees every event, so the expired socket's silence is measured against a delivery.
    const witness = watch({ token: await token('witness', undefined) });
    await waitForSubscriptions(server.url, 2);

    const before = await createTask('before expiry');
    const [first] = await expiring.waitForEvents(1);
    expect(first).toMatchObject({ taskId: before, kind: 'CREATED' });
    expect(Date.now()).toBeLessThan(expMs);

    const closed = await expiring.waitForClose(expMs - Date.now() + 10_000);
    expect(closed).toEqual({ code: 4401, reason: 'Unauthorized: the token expired' });
    expect(closedAt).toBeGreaterThanOrEqual(expMs - 50);
    expect(closedAt).toBeLessThanOrEqual(expMs + 2000);
    expect(witness.closed).toBeUndefined();
    await waitForSubscriptions(server.url, 1);
    expect(server.logs.some((l) => l.msg === 'closing the WebSocket connection: the token expired')).toBe(true);

    const after = await createTask('after expiry');
    const seen = await witness.waitForEvents(2);
    expect(seen.map((e) => e.taskId)).toEqual([before, after]);
    expect(expiring.events.map((e) => e.taskId)).toEqual([before]);

    // The client reconnects with a fresh token and resumes after the last event it processed.
    const resumed = watch({ token: await token('short-lived', nowSeconds() + 300), variables: { after: first!.cursor } });
    const missed = await resumed.waitForEvents(1);
    expect(missed.map((e) => e.id)).toEqual([seen[1]!.id]);
    expect(resumed.closed).toBeUndefined();
  });

  it('stays open past two seconds when the token has no exp', async () => {
    const started = Date.now();
    const forever = watch({ token: await token('no-exp', undefined) });
    await waitForSubscriptions(server.url, 1);
    // Time is what is under test: the event is committed after the moment the 2 s token above would have closed.
    await new Promise((r) => setTimeout(r, Math.max(0, started + 2500 - Date.now())));
    const taskId = await createTask('after 2.5 s');
    expect((await forever.waitForEvents(1))[0]).toMatchObject({ taskId, kind: 'CREATED' });
    expect(forever.closed).toBeUndefined();
  });

  it('stays open with a token that expires beyond the longest setTimeout delay (2^31-1 ms)', async () => {
    // 60 days: a setTimeout of that length fires after 1 ms (with a TimeoutOverflowWarning, in this process, since
    // the server runs here), which would close the socket at connect or spin.
    const overflows: string[] = [];
    const onWarning = (w: Error): void => {
      if (w.name === 'TimeoutOverflowWarning') overflows.push(w.message);
    };
    process.on('warning', onWarning);
    try {
      const distant = watch({ token: await token('long-lived', nowSeconds() + 60 * 24 * 3600) });
      await waitForSubscriptions(server.url, 1);
      const taskId = await createTask('long-lived token');
      expect((await distant.waitForEvents(1))[0]).toMatchObject({ taskId });
      expect(distant.closed).toBeUndefined();
      expect(overflows).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('lets the typed client with a token function reconnect on its own with a fresh token, missing nothing', async () => {
    const exp = Math.ceil(Date.now() / 1000) + 2;
    const issued: string[] = [];
    // First a token that expires in about 2 s, then (as an app's refresh would) a fresh one.
    const tokenSource = async () => {
      const next = await token('refreshing', issued.length === 0 ? exp : nowSeconds() + 300);
      issued.push(next);
      return next;
    };
    const events: WatchedTaskEvent[] = [];
    const errors: TaskTrackerError[] = [];
    const stop = watchTaskEvents({ url: `${server.url}/graphql`, token: tokenSource, webSocketImpl: WebSocket }, { kinds: ['CREATED'] }, {
      next: (e) => events.push(e),
      error: (e) => errors.push(e),
    });
    try {
      await waitForSubscriptions(server.url, 1);
      const before = await createTask('client before expiry');
      await waitFor(() => events.length === 1, 'the event before expiry');
      // The server closes the first connection at exp (4401); the client connects again with the second token.
      await waitFor(() => issued.length === 2, 'the client to ask for a fresh token', exp * 1000 - Date.now() + 10_000);
      await waitForSubscriptions(server.url, 1);
      const after = await createTask('client after expiry');
      await waitFor(() => events.length === 2, 'the event after the reconnection');
      expect(events.map((e) => e.taskId)).toEqual([before, after]);
      expect(errors).toEqual([]);
      expect(server.logs.some((l) => l.msg === 'closing the WebSocket connection: the token expired')).toBe(true);
    } finally {
      await stop();
    }
  });

  it('is refused at connection_init with a token that has already expired', async () => {
    const stale = watch({ token: await token('stale', nowSeconds() - 10) });
    const closed = await stale.waitForClose();
    expect(closed).toEqual({ code: 4401, reason: 'Unauthorized: The token has expired' });
    expect(stale.events).toEqual([]);
  });
});
