import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startServer, type TestServer } from '../helpers/server.js';

let db: TestDatabase;
let server: TestServer;

interface Row {
  id: string;
  title: string;
  status: string;
  priority: string;
  type: string;
  assignee: string | null;
  tags: string[];
  createdAt: string;
  parent: { id: string; title: string } | null;
}
interface Conn {
  totalCount?: number;
  edges: Array<{ cursor: string; node: Row }>;
  nodes: Row[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
}

const LIST = `query List($filter: TaskFilter, $first: Int, $after: String) {
  tasks(filter: $filter, first: $first, after: $after) {
    edges { cursor node { id title status priority type assignee tags createdAt parent { id title } } }
    nodes { id }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`;

async function list(variables: Record<string, unknown>, requestId?: string) {
  return server.gql<{ tasks: Conn }>(LIST, variables, requestId ? { 'x-request-id': requestId } : {});
}

/** Walks every page of a listing and returns the ids in order. */
async function walk(filter: Record<string, unknown> | undefined, first: number): Promise<string[]> {
  const ids: string[] = [];
  let after: string | null = null;
  for (let pages = 0; pages < 1000; pages++) {
    const res = await list({ filter, first, after });
    expect(res.body.errors).toBeUndefined();
    const conn = res.body.data!.tasks;
    ids.push(...conn.edges.map((e) => e.node.id));
    expect(conn.nodes.map((n) => n.id)).toEqual(conn.edges.map((e) => e.node.id));
    if (!conn.pageInfo.hasNextPage) return ids;
    after = conn.pageInfo.endCursor;
  }
  throw new Error('pagination did not end');
}

// 30 tasks arranged directly in SQL: ten share one created_at (ties), with a spread of fields to filter on.
const seeded: Array<{ id: string; createdAt: string; status: string; priority: string; type: string; assignee: string | null; tags: string[]; archived: boolean }> = [];

beforeAll(async () => {
  db = await createTestDatabase('list');
  server = await startServer(db.url);
  const statuses = ['PENDING', 'IN_PROGRESS', 'COMPLETED'];
  const priorities = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];
  const types = ['FEATURE', 'BUG_FIX', 'RESEARCH'];
  const c = await db.client();
  for (let i = 0; i < 30; i++) {
    const createdAt = i < 10 ? '2026-01-01T00:00:00.000Z' : new Date(Date.UTC(2026, 0, 2) + i * 1000).toISOString();
    const row = {
      id: randomUUID(),
      createdAt,
      status: statuses[i % 3]!,
      priority: priorities[i % 4]!,
      type: types[i % 3]!,
      assignee: i % 5 === 0 ? null : `user${i % 2}`,
      tags: i % 2 === 0 ? ['even', `n${i}`] : ['odd'],
      archived: i % 10 === 9,
    };
    seeded.push(row);
    await c.query(
      `insert into task (id, title, type, priority, status, assignee, created_by, tags, created_at, updated_at, archived_at)
       values ($1, $2, $3, $4, $5, $6, 'seed', $7, $8, $8, $9)`,
      [row.id, `task ${i}`, row.type, row.priority, row.status, row.assignee, row.tags, createdAt, row.archived ? createdAt : null],
    );
  }
  await c.end();
});
afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

/** The contract's default order: created_at DESC, then id DESC. */
function expectedOrder(rows: typeof seeded): string[] {
  return [...rows]
    .sort((a, b) => (a.createdAt === b.createdAt ? (a.id < b.id ? 1 : -1) : a.createdAt < b.createdAt ? 1 : -1))
    .map((r) => r.id);
}

describe('tasks', () => {
  it('returns the newest first, live tasks only, by default', async () => {
    const res = await list({});
    const ids = res.body.data!.tasks.edges.map((e) => e.node.id);
    expect(ids).toEqual(expectedOrder(seeded.filter((r) => !r.archived)));
    expect(res.body.data!.tasks.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: false });
  });

  it.each([1, 2, 3, 7, 100])('walks every row exactly once with pages of %i, across ties', async (first) => {
    const ids = await walk({ archived: 'INCLUDE' }, first);
    expect(ids).toEqual(expectedOrder(seeded));
    expect(new Set(ids).size).toBe(seeded.length);
  });

  it('says whether there is a next and a previous page', async () => {
    const p1 = (await list({ first: 5 })).body.data!.tasks;
    expect(p1.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    expect(p1.pageInfo.startCursor).toBe(p1.edges[0]!.cursor);
    expect(p1.pageInfo.endCursor).toBe(p1.edges[4]!.cursor);
    const p2 = (await list({ first: 5, after: p1.pageInfo.endCursor })).body.data!.tasks;
    expect(p2.pageInfo.hasPreviousPage).toBe(true);
  });

  it('gives an empty page with first: 0', async () => {
    const conn = (await list({ first: 0 })).body.data!.tasks;
    expect(conn.edges).toEqual([]);
    expect(conn.pageInfo).toMatchObject({ startCursor: null, endCursor: null });
  });

  it.each([
    ['status', { status: ['PENDING', 'COMPLETED'] }, (r: (typeof seeded)[0]) => ['PENDING', 'COMPLETED'].includes(r.status)],
    ['priority', { priority: ['CRITICAL'] }, (r: (typeof seeded)[0]) => r.priority === 'CRITICAL'],
    ['type', { type: ['BUG_FIX', 'RESEARCH'] }, (r: (typeof seeded)[0]) => ['BUG_FIX', 'RESEARCH'].includes(r.type)],
    ['assignee', { assignee: ['user1'] }, (r: (typeof seeded)[0]) => r.assignee === 'user1'],
    ['tagsAny', { tagsAny: ['n4', 'odd'] }, (r: (typeof seeded)[0]) => r.tags.includes('n4') || r.tags.includes('odd')],
    ['archived ONLY', { archived: 'ONLY' }, (r: (typeof seeded)[0]) => r.archived],
    ['archived INCLUDE', { archived: 'INCLUDE' }, () => true],
    ['several at once', { status: ['PENDING'], tagsAny: ['even'] }, (r: (typeof seeded)[0]) => r.status === 'PENDING' && r.tags.includes('even')],
    ['an empty list', { status: [] }, () => false],
  ])('filters by %s', async (_name, filter, keep) => {
    const ids = await walk(filter, 4);
    const archived = (filter as { archived?: string }).archived;
    const visible = seeded.filter((r) => (archived === 'ONLY' ? r.archived : archived === 'INCLUDE' ? true : !r.archived));
    const expected = expectedOrder(visible.filter(keep));
    expect(ids).toEqual(expected);
  });

  it('treats filter strings as values, never as SQL', async () => {
    const res = await list({ filter: { assignee: ["user1' or '1'='1"], tagsAny: ["'); drop table task; --"] } });
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.tasks.edges).toEqual([]);
    expect((await list({ filter: { archived: 'INCLUDE' }, first: 100 })).body.data!.tasks.edges).toHaveLength(30);
  });

  it.each([101, -1])('refuses first: %i with BAD_USER_INPUT', async (first) => {
    const res = await list({ first });
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'first' });
  });

  it.each(['garbage', '', 'WyJhIl0', Buffer.from('[1,2,3]').toString('base64url'), Buffer.from('["not a date","x"]').toString('base64url'), '%%%'])(
    'refuses the malformed cursor %j with BAD_USER_INPUT',
    async (after) => {
      const res = await list({ after });
      expect(res.status).toBe(200);
      expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
    },
  );

  it('counts only when totalCount is selected', async () => {
    const without = await list({ first: 3 }, 'count-without');
    expect(without.body.errors).toBeUndefined();
    const withCount = await server.gql<{ tasks: { totalCount: number } }>(
      `{ tasks(first: 3, filter: { status: [PENDING] }) { totalCount nodes { id } } }`,
      {},
      { 'x-request-id': 'count-with' },
    );
    expect(withCount.body.data!.tasks.totalCount).toBe(seeded.filter((r) => r.status === 'PENDING' && !r.archived).length);
    const a = await server.report('count-without');
    const b = await server.report('count-with');
    expect(b.sqlStatements).toBe(a.sqlStatements + 1);
  });

  it('resolves the parents of a whole page in one batched statement', async () => {
    const parents = [];
    for (let i = 0; i < 3; i++) {
      const p = await server.gql<{ createTask: { id: string } }>(`mutation { createTask(input: { title: "parent ${i}", tags: ["family"] }) { id } }`);
      parents.push(p.body.data!.createTask.id);
    }
    for (let i = 0; i < 12; i++) {
      await server.gql(`mutation($p: ID) { createTask(input: { title: "child ${i}", parentId: $p, tags: ["family", "child"] }) { id } }`, {
        p: parents[i % 3],
      });
    }
    const res = await list({ filter: { tagsAny: ['child'] }, first: 50 }, 'parents-batched');
    const edges = res.body.data!.tasks.edges;
    expect(edges).toHaveLength(12);
    for (const e of edges) expect(parents).toContain(e.node.parent?.id);
    expect(new Set(edges.map((e) => e.node.parent?.title))).toEqual(new Set(['parent 0', 'parent 1', 'parent 2']));
    // One statement for the page and one for all twelve parents, however large the page.
    expect((await server.report('parents-batched')).sqlStatements).toBe(2);
  });
});
