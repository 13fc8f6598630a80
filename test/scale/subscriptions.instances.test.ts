/**
 * Subscriptions across instances: two real server processes (`src/main.ts`) on one database. A mutation on A
 * reaches a subscriber on B through PostgreSQL (the NOTIFY trigger, B's LISTEN connection, B's read of the feed);
 * killing B's listener connection mid-burst loses nothing and repeats nothing; SIGTERM on A loses no write A
 * acknowledged.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { spawnServer, type ChildServer } from '../helpers/child.js';
import { waitFor } from '../helpers/server.js';
import { subscribe, type Subscription } from '../helpers/ws.js';

let db: TestDatabase;
let observer: pg.Client;
const suffix = randomBytes(4).toString('hex');
const names = { a: `tt-subs-a-${suffix}`, b: `tt-subs-b-${suffix}` };
let a: ChildServer;
let b: ChildServer;
let aUrl: string;
let bUrl: string;
const open: Subscription[] = [];

const start = (applicationName: string) =>
  spawnServer({ DATABASE_URL: db.url, DB_APPLICATION_NAME: applicationName, DB_POOL_MIN: '0', LOG_LEVEL: 'info', SHUTDOWN_GRACE_MS: '10000' });

beforeAll(async () => {
  db = await createTestDatabase('subs_instances');
  observer = await db.client();
  a = start(names.a);
  await a.ready(); // A migrates; B then boots on a migrated database
  b = start(names.b);
  await b.ready();
  [aUrl, bUrl] = await Promise.all([a.url(), b.url()]);
}, 60_000);

afterAll(async () => {
  await Promise.all(open.map((s) => s.dispose()));
  for (const server of [a, b]) {
    if (server && server.proc.exitCode === null && server.proc.signalCode === null) {
      server.kill('SIGTERM');
      await server.exited;
    }
  }
  await db?.drop();
});

async function gql<T>(url: string, query: string, variables: Record<string, unknown> = {}) {
  const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  return { status: res.status, body: (await res.json()) as { data?: T | null; errors?: unknown[] } };
}

async function createTask(url: string, title: string): Promise<string> {
  const res = await gql<{ createTask: { id: string } }>(url, 'mutation($t: String!) { createTask(input: { title: $t }) { id } }', { t: title });
  if (res.status !== 200 || !res.body.data) throw new Error(`createTask failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data.createTask.id;
}

/** The feed's head cursor now (null on an empty feed): subscribing after it misses nothing that follows. */
async function head(url: string): Promise<string | null> {
  const res = await gql<{ taskEvents: { pageInfo: { endCursor: string | null } } }>(url, '{ taskEvents(last: 1) { pageInfo { endCursor } } }');
  return res.body.data!.taskEvents.pageInfo.endCursor;
}

/** Every event id after `after`, as the feed lists them (paging through `Query.taskEvents`). */
async function feedIds(url: string, after: string | null): Promise<string[]> {
  const out: string[] = [];
  let cursor = after;
  for (;;) {
    const res = await gql<{ taskEvents: { nodes: Array<{ id: string }>; pageInfo: { hasNextPage: boolean; endCursor: string | null } } }>(
      url,
      'query($after: String) { taskEvents(after: $after, first: 100) { nodes { id } pageInfo { hasNextPage endCursor } } }',
      { after: cursor },
    );
    out.push(...res.body.data!.taskEvents.nodes.map((n) => n.id));
    if (!res.body.data!.taskEvents.pageInfo.hasNextPage) return out;
    cursor = res.body.data!.taskEvents.pageInfo.endCursor;
  }
}

const watch = (url: string, after: string | null) => {
  const s = subscribe(url, { variables: { after } });
  open.push(s);
  return s;
};

/** Runs `count` createTask calls against `url`, `concurrency` at a time; calls `onAck` after each success. */
async function burst(url: string, count: number, concurrency: number, onAck: (n: number) => void | Promise<void> = () => undefined) {
  const acked: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        acked.push(await createTask(url, `burst ${next}`));
        await onAck(acked.length);
      }
    }),
  );
  return acked;
}

describe('two server processes on one database', () => {
  it('delivers a mutation on A to a subscriber on B', async () => {
    // Start from an explicit cursor: without one a stream starts at the moment B registers it, which may come
    // after the mutation below has committed.
    await createTask(aUrl, 'before the subscription');
    const start = await waitFor(() => head(aUrl), 'a head cursor on the feed');
    const sub = watch(bUrl, start);
    const id = await createTask(aUrl, 'from A');
    const [event] = await sub.waitForEvents(1);
    expect(event).toMatchObject({ taskId: id, kind: 'CREATED' });
    await sub.dispose();
  });

  it("loses no event and repeats none when B's listener connection is killed during a burst on A", async () => {
    const after = await head(aUrl);
    const sub = watch(bUrl, after);
    let killed = false;
    const acked = await burst(aUrl, 200, 4, async (n) => {
      if (n !== 60 || killed) return;
      killed = true;
      const { rows } = await observer.query<{ ok: boolean }>(
        'select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name = $1',
        [`${names.b}:listener`],
      );
      expect(rows).toEqual([{ ok: true }]);
    });
    expect(acked).toHaveLength(200);
    await b.line((l) => l.msg === 'subscription listener connection lost: reconnecting', 'the listener loss');
    await b.line((l) => typeof l.msg === 'string' && l.msg.startsWith('subscription listener reconnected'), 'the listener reconnect');
    // The feed shows a commit only once every older transaction on the server has ended: other test files' open
    // transactions may hold the last events back for a moment, so wait for all 200 (it never skips one).
    const expected = await waitFor(async () => {
      const ids = await feedIds(aUrl, after);
      return ids.length >= 200 && ids;
    }, 'the 200 events in the feed', 30_000);
    expect(expected).toHaveLength(200);
    const events = await sub.waitForEvents(200, 30_000);
    expect(events.map((e) => e.id)).toEqual(expected);
    expect(new Set(events.map((e) => e.taskId))).toEqual(new Set(acked));
    await sub.dispose();
  });

  it('delivers on B every write A acknowledged before SIGTERM ended it', async () => {
    const sub = watch(bUrl, await head(bUrl));
    const acked: string[] = [];
    let stopping = false;
    const workers = Array.from({ length: 4 }, async () => {
      // Keep writing until A stops answering; record only what A acknowledged (200 with data).
      for (;;) {
        try {
          acked.push(await createTask(aUrl, 'during shutdown'));
        } catch {
          if (stopping) return;
        }
        if (acked.length === 40 && !stopping) {
          stopping = true;
          a.kill('SIGTERM');
        }
      }
    });
    await Promise.all(workers);
    expect((await a.exited).code).toBe(0);
    expect(acked.length).toBeGreaterThanOrEqual(40);
    await waitFor(() => acked.every((id) => sub.events.some((e) => e.taskId === id)), `all ${acked.length} acknowledged writes on B`, 30_000);
    const delivered = sub.events.map((e) => e.id);
    expect(new Set(delivered).size).toBe(delivered.length);
    await sub.dispose();
  });
});
