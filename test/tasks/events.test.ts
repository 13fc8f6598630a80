import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';
import { feedCaughtUp } from '../helpers/feed.js';

const { db, server } = useServer('events');

interface EventOut {
  id: string;
  taskId: string;
  kind: string;
  actor: string;
  at: string;
  changes: Record<string, unknown>;
  cursor: string;
  task: { id: string } | null;
}
interface Feed {
  edges: Array<{ cursor: string; node: EventOut }>;
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  totalCount?: number;
}
const EVENT = 'id taskId kind actor at changes cursor task { id }';

async function feed(args: string): Promise<Feed> {
  const res = await server.gql<{ taskEvents: Feed }>(`{ taskEvents(${args}) { edges { cursor node { ${EVENT} } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`);
  expect(res.body.errors).toBeUndefined();
  return res.body.data!.taskEvents;
}

async function head(): Promise<string | null> {
  await feedCaughtUp(db);
  return (await feed('last: 1')).pageInfo.endCursor;
}

/** Every event after `cursor`, page by page; first waits until the feed shows what committed so far (`settle`). */
async function drain(cursor: string | null, pageSize = 3, settle = true): Promise<EventOut[]> {
  if (settle) await feedCaughtUp(db);
  const out: EventOut[] = [];
  let after = cursor;
  for (;;) {
    const page = await feed(after ? `after: "${after}", first: ${pageSize}` : `first: ${pageSize}`);
    out.push(...page.edges.map((e) => e.node));
    if (!page.pageInfo.hasNextPage) return out;
    after = page.pageInfo.endCursor;
  }
}

async function mutate<T = Record<string, { id: string; version: number }>>(query: string): Promise<T> {
  const res = await server.gql<T>(query);
  expect(res.body.errors).toBeUndefined();
  return res.body.data!;
}

describe('task events', () => {
  it('records one event per change, in the same transaction, and the version counts them', async () => {
    const start = await head();
    const { createTask: t } = await mutate<{ createTask: { id: string } }>('mutation { createTask(input: { title: "evented" }) { id } }');
    const { createTask: other } = await mutate<{ createTask: { id: string } }>('mutation { createTask(input: { title: "other" }) { id } }');
    await mutate(`mutation { updateTask(id: "${t.id}", input: { title: "renamed", tags: ["x"] }) { id } }`);
    await mutate(`mutation { updateTask(id: "${t.id}", input: { title: "renamed" }) { id } }`); // no change, no event
    await mutate(`mutation { addTaskDependency(taskId: "${t.id}", dependsOnId: "${other.id}") { id } }`);
    await mutate(`mutation { removeTaskDependency(taskId: "${t.id}", dependsOnId: "${other.id}") { id } }`);
    await mutate(`mutation { startTask(id: "${t.id}") { id } }`);
    await mutate(`mutation { reportProgress(id: "${t.id}", progress: 0.5) { id } }`);
    await mutate(`mutation { archiveTask(id: "${t.id}") { id } }`);
    await mutate(`mutation { archiveTask(id: "${t.id}") { id } }`); // already archived: no event
    await mutate(`mutation { unarchiveTask(id: "${t.id}") { id } }`);

    const events = (await drain(start)).filter((e) => e.taskId === t.id);
    expect(events.map((e) => e.kind)).toEqual([
      'CREATED',
      'UPDATED',
      'DEPENDENCY_ADDED',
      'DEPENDENCY_REMOVED',
      'STATUS_CHANGED',
      'UPDATED',
      'ARCHIVED',
      'UNARCHIVED',
    ]);
    expect(events[1]!.changes).toEqual({ title: { from: 'evented', to: 'renamed' }, tags: { from: [], to: ['x'] } });
    expect(events[2]!.changes).toEqual({ dependsOnId: other.id });
    expect(events[4]!.changes).toMatchObject({ status: { from: 'PENDING', to: 'IN_PROGRESS' } });
    expect(events[5]!.changes).toEqual({ progress: { from: 0, to: 0.5 } });
    for (const e of events) expect(e).toMatchObject({ actor: 'anonymous', task: { id: t.id } });

    const { task } = await mutate<{ task: { version: number; events: { totalCount: number; nodes: Array<{ kind: string }> } } }>(
      `{ task(id: "${t.id}") { version events { totalCount nodes { kind } } } }`,
    );
    // version starts at 1 with CREATED and grows by exactly one with every later event.
    expect(task.version).toBe(events.length);
    expect(task.events.totalCount).toBe(events.length);
    expect(task.events.nodes.map((n) => n.kind)).toEqual(events.map((e) => e.kind));
  });

  it('writes nothing when the change fails', async () => {
    const before = await head();
    const { createTask: t } = await mutate<{ createTask: { id: string } }>('mutation { createTask(input: { title: "stable" }) { id } }');
    const bad = await server.gql(`mutation { updateTask(id: "${t.id}", input: { title: "" }) { id } }`);
    expect(bad.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const conflict = await server.gql(`mutation { updateTask(id: "${t.id}", input: { title: "late" }, expectedVersion: 9) { id } }`);
    expect(conflict.body.errors?.[0]?.extensions?.code).toBe('VERSION_CONFLICT');
    const events = (await drain(before)).filter((e) => e.taskId === t.id);
    expect(events.map((e) => e.kind)).toEqual(['CREATED']);
  });
});

describe('the taskEvents change feed', () => {
  it('pages forwards and backwards in one order, and last: 1 gives the head cursor', async () => {
    for (let i = 0; i < 5; i++) await mutate(`mutation { createTask(input: { title: "feed ${i}" }) { id } }`);
    const all = await drain(null, 4);
    expect(all.length).toBeGreaterThanOrEqual(5);
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
    const last = await feed('last: 1');
    expect(last.edges.map((e) => e.node.id)).toEqual([all.at(-1)!.id]);
    expect(last.pageInfo.hasPreviousPage).toBe(true);
    expect((await feed(`after: "${last.pageInfo.endCursor}"`)).edges).toEqual([]);
    // Backwards from the end, three at a time, gives the same events.
    const backwards: EventOut[] = [];
    let before: string | null = null;
    for (;;) {
      const page = await feed(before ? `last: 3, before: "${before}"` : 'last: 3');
      backwards.unshift(...page.edges.map((e) => e.node));
      if (!page.pageInfo.hasPreviousPage) break;
      before = page.pageInfo.startCursor;
    }
    expect(backwards.map((e) => e.id)).toEqual(all.map((e) => e.id));
    expect(all.at(-1)!.cursor).toBe(last.pageInfo.endCursor);
  });

  it('never skips an event from a transaction that started earlier but commits later', async () => {
    const start = await head();
    const seen: EventOut[] = [];
    const poll = async () => {
      const cursor = seen.length ? seen.at(-1)!.cursor : start;
      // No waiting for the feed to settle: this test's own open transaction holds it back on purpose.
      seen.push(...(await drain(cursor, 3, false)));
    };
    // A writer that starts first and commits last: its event is written, but not yet committed.
    const slow = await db.client();
    const slowTask = randomUUID();
    await slow.query('begin');
    await slow.query(
      `insert into task (id, title, type, priority, created_by, created_at, updated_at) values ($1, 'slow', 'FEATURE', 'LOW', 'test', now(), now())`,
      [slowTask],
    );
    await slow.query(`insert into task_event (task_id, kind, actor, at, changes) values ($1, 'CREATED', 'test', now(), '{}')`, [slowTask]);
    try {
      // Meanwhile others commit, and a client polls the feed.
      const quick: string[] = [];
      for (let i = 0; i < 3; i++) {
        quick.push((await mutate<{ createTask: { id: string } }>(`mutation { createTask(input: { title: "quick ${i}" }) { id } }`)).createTask.id);
        await poll();
      }
      // While the slow transaction is open the feed holds back rather than moving past its event.
      expect(seen.filter((e) => e.taskId === slowTask)).toEqual([]);
      await slow.query('commit');
      await feedCaughtUp(db);
      await poll();
      const ids = seen.map((e) => e.taskId);
      expect(ids).toContain(slowTask);
      for (const q of quick) expect(ids).toContain(q);
      expect(new Set(seen.map((e) => e.id)).size).toBe(seen.length);
      // Feed order: the transaction that started first comes first.
      expect(ids.indexOf(slowTask)).toBeLessThan(ids.indexOf(quick[0]!));
    } finally {
      await slow.query('rollback').catch(() => undefined);
    }
  });

  it.each(['garbage', 'WyIxIl0', Buffer.from('["x","1"]').toString('base64url')])('refuses the malformed cursor %j', async (cursor) => {
    const res = await server.gql(`{ taskEvents(after: "${cursor}") { edges { cursor } } }`);
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
  });

  it('refuses first above 100 and first with last', async () => {
    expect((await server.gql('{ taskEvents(first: 101) { edges { cursor } } }')).body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect((await server.gql('{ taskEvents(first: 1, last: 1) { edges { cursor } } }')).body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});
