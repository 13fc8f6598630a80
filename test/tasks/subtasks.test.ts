import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { useServer, type GqlResponse } from '../helpers/server.js';

const { db, server } = useServer('subtasks');

interface Seed {
  id: string;
  title: string;
  status: string;
  createdAt: string;
  archived: boolean;
  parent: number | null;
}
interface Sub {
  totalCount?: number;
  nodes: Array<{ id: string; title: string; parent?: { id: string; title: string } | null }>;
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; endCursor: string | null };
}
interface Parent {
  id: string;
  subtasks: Sub;
  subtaskSummary: { total: number; completed: number; percentCompleted: number };
}

// 40 parents (newest last); parent i has i % 6 children, every third of them COMPLETED, the third one archived,
// the first two created at the same instant (a tie the id breaks).
const parents: Seed[] = [];
const children: Seed[] = [];
const T0 = Date.UTC(2026, 0, 1);
for (let i = 0; i < 40; i++) {
  parents.push({ id: randomUUID(), title: `parent ${i}`, status: 'PENDING', createdAt: new Date(T0 + i * 60_000).toISOString(), archived: false, parent: null });
  for (let k = 0; k < i % 6; k++) {
    children.push({
      id: randomUUID(),
      title: ['kilo', 'alpha', 'hotel', 'delta', 'echo'][k]!,
      status: k % 3 === 0 ? 'COMPLETED' : 'PENDING',
      createdAt: new Date(T0 + 3_600_000 + i * 60_000 + Math.max(k, 1) * 1000).toISOString(),
      archived: k === 2,
      parent: i,
    });
  }
}

/** Children of parent i in the default order (newest first, id last), archived ones only when asked. */
function kids(i: number, keep: (c: Seed) => boolean = (c) => !c.archived): Seed[] {
  return children
    .filter((c) => c.parent === i && keep(c))
    .sort((a, b) => (a.createdAt === b.createdAt ? (a.id < b.id ? 1 : -1) : a.createdAt < b.createdAt ? 1 : -1));
}

beforeAll(async () => {
  const c = await db.client();
  for (const t of [...parents, ...children]) {
    await c.query(
      `insert into task (id, title, type, priority, status, created_by, tags, created_at, updated_at, archived_at, parent_id)
       values ($1, $2, 'FEATURE', 'MEDIUM', $3, 'seed', $4, $5, $5, $6, $7)`,
      [t.id, t.title, t.status, t.parent === null ? ['parent'] : ['child'], t.createdAt, t.archived ? t.createdAt : null, t.parent === null ? null : parents[t.parent]!.id],
    );
  }
});

const PAGE = `query Parents($first: Int, $sub: Int) {
  tasks(filter: { tagsAny: ["parent"] }, first: $first, orderBy: [{ field: CREATED_AT, direction: ASC }]) {
    nodes { id subtasks(first: $sub) { totalCount nodes { id title } pageInfo { hasNextPage hasPreviousPage endCursor } }
            subtaskSummary { total completed percentCompleted } }
  }
}`;

async function parentsPage(first: number, sub: number, requestId: string): Promise<Parent[]> {
  const res = await server.gql<{ tasks: { nodes: Parent[] } }>(PAGE, { first, sub }, { 'x-request-id': requestId });
  expect(res.body.errors).toBeUndefined();
  return res.body.data!.tasks.nodes;
}

describe('Task.subtasks', () => {
  it('gives each parent its first page of live children, newest first, with exact hasNextPage and totalCount', async () => {
    const page = await parentsPage(40, 2, 'sub-40');
    expect(page.map((p) => p.id)).toEqual(parents.map((p) => p.id));
    page.forEach((p, i) => {
      const live = kids(i);
      expect(p.subtasks.nodes.map((n) => n.id)).toEqual(live.slice(0, 2).map((c) => c.id));
      expect(p.subtasks.pageInfo).toMatchObject({ hasNextPage: live.length > 2, hasPreviousPage: false });
      expect(p.subtasks.totalCount).toBe(live.length);
    });
  });

  it('costs the same statements for a page of 10 parents as for 40: one per kind', async () => {
    await parentsPage(10, 3, 'sub-10b');
    await parentsPage(40, 3, 'sub-40b');
    const ten = await server.report('sub-10b');
    const forty = await server.report('sub-40b');
    // The parents, all their first pages, all their totalCounts, all their summaries.
    expect(ten.sqlStatements).toBe(4);
    expect(forty.sqlStatements).toBe(4);
  });

  it('counts subtasks only when totalCount is selected', async () => {
    const q = `{ tasks(filter: { tagsAny: ["parent"] }, first: 20) { nodes { subtasks(first: 5) { nodes { id } } } } }`;
    expect((await server.gql(q, {}, { 'x-request-id': 'sub-nocount' })).body.errors).toBeUndefined();
    expect((await server.report('sub-nocount')).sqlStatements).toBe(2);
  });

  it('reuses the loaded parents for the subtasks’ parent field', async () => {
    const q = `{ tasks(filter: { tagsAny: ["parent"] }, first: 40) { nodes { id subtasks(first: 5) { nodes { parent { id title } } } } } }`;
    const res = await server.gql<{ tasks: { nodes: Parent[] } }>(q, {}, { 'x-request-id': 'sub-parent' });
    for (const p of res.body.data!.tasks.nodes) for (const n of p.subtasks.nodes) expect(n.parent?.id).toBe(p.id);
    expect((await server.report('sub-parent')).sqlStatements).toBe(2);
  });

  it('walks one parent’s subtasks page by page in any order', async () => {
    const i = 5;
    const q = `query($id: ID!, $after: String) { task(id: $id) {
      subtasks(first: 1, after: $after, orderBy: [{ field: TITLE, direction: DESC }], filter: { archived: INCLUDE }) {
        totalCount nodes { id title } pageInfo { hasNextPage hasPreviousPage endCursor } } } }`;
    const ids: string[] = [];
    let after: string | null = null;
    for (let n = 0; n < 10; n++) {
      const res: GqlResponse<{ task: Parent }> = await server.gql<{ task: Parent }>(q, { id: parents[i]!.id, after });
      expect(res.body.errors).toBeUndefined();
      const sub: Sub = res.body.data!.task.subtasks;
      expect(sub.totalCount).toBe(5);
      expect(sub.pageInfo.hasPreviousPage).toBe(after !== null);
      ids.push(...sub.nodes.map((x) => x.id));
      if (!sub.pageInfo.hasNextPage) break;
      after = sub.pageInfo.endCursor;
    }
    const expected = kids(i, () => true).sort((a, b) => (a.title < b.title ? 1 : -1)).map((c) => c.id);
    expect(ids).toEqual(expected);
  });

  it.each([
    ['status', { status: ['COMPLETED'] }, (c: Seed) => !c.archived && c.status === 'COMPLETED'],
    ['archived INCLUDE', { archived: 'INCLUDE' }, () => true],
    ['archived ONLY', { archived: 'ONLY' }, (c: Seed) => c.archived],
  ])('filters subtasks by %s', async (_name, filter, keep) => {
    const q = `query($filter: TaskFilter) { tasks(filter: { tagsAny: ["parent"] }, first: 40, orderBy: [{ field: CREATED_AT }]) {
      nodes { subtasks(first: 10, filter: $filter) { totalCount nodes { id } } } } }`;
    const res = await server.gql<{ tasks: { nodes: Parent[] } }>(q, { filter });
    expect(res.body.errors).toBeUndefined();
    res.body.data!.tasks.nodes.forEach((p, i) => {
      const expected = kids(i, keep).map((c) => c.id);
      expect(p.subtasks.nodes.map((n) => n.id)).toEqual(expected);
      expect(p.subtasks.totalCount).toBe(expected.length);
    });
  });

  it('batches per distinct arguments: two aliases, two statements', async () => {
    const q = `{ tasks(filter: { tagsAny: ["parent"] }, first: 40, orderBy: [{ field: CREATED_AT }]) { nodes {
      a: subtasks(first: 1) { nodes { id } }
      b: subtasks(first: 2, orderBy: [{ field: TITLE }]) { nodes { id } }
      c: subtasks(first: 1) { nodes { id } } } } }`;
    const res = await server.gql<{ tasks: { nodes: Array<Record<'a' | 'b' | 'c', Sub>> } }>(q, {}, { 'x-request-id': 'sub-alias' });
    expect(res.body.errors).toBeUndefined();
    res.body.data!.tasks.nodes.forEach((p, i) => {
      expect(p.a.nodes.map((n) => n.id)).toEqual(kids(i).slice(0, 1).map((c) => c.id));
      expect(p.c).toEqual(p.a);
      const byTitle = kids(i).sort((x, y) => (x.title < y.title ? -1 : 1));
      expect(p.b.nodes.map((n) => n.id)).toEqual(byTitle.slice(0, 2).map((c) => c.id));
    });
    expect((await server.report('sub-alias')).sqlStatements).toBe(3);
  });

  it.each([
    ['first: 101', '(first: 101)', 'first'],
    ['first: -1', '(first: -1)', 'first'],
    ['a malformed after', '(after: "nope")', 'after'],
    ['a duplicate order', '(orderBy: [{ field: TITLE }, { field: TITLE }])', 'orderBy'],
  ])('refuses %s with BAD_USER_INPUT', async (_name, args, field) => {
    const res = await server.gql(`query($id: ID!) { task(id: $id) { subtasks${args} { nodes { id } } } }`, { id: parents[3]!.id });
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
  });
});

describe('Task.subtaskSummary', () => {
  it('counts every child, archived included, and the completed ones', async () => {
    const page = await parentsPage(40, 0, 'summary');
    page.forEach((p, i) => {
      const all = kids(i, () => true);
      const completed = all.filter((c) => c.status === 'COMPLETED').length;
      expect(p.subtaskSummary).toEqual({ total: all.length, completed, percentCompleted: all.length ? (100 * completed) / all.length : 0 });
    });
    // Spot checks that the arrangement covers the interesting cases.
    expect(page[0]!.subtaskSummary).toEqual({ total: 0, completed: 0, percentCompleted: 0 });
    expect(page[4]!.subtaskSummary).toEqual({ total: 4, completed: 2, percentCompleted: 50 });
    expect(page[3]!.subtaskSummary.total).toBe(3);
    expect(page[3]!.subtaskSummary.percentCompleted).toBeCloseTo(100 / 3, 10);
  });
});
