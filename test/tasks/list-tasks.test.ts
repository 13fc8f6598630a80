import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';

const { db, server } = useServer('list');

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

// 30 tasks arranged directly in SQL: ten share one created_at (ties), with a spread of fields to filter on. A few
// titles and descriptions hold LIKE wildcards, and near-misses that would match if they were not taken literally.
interface Seed {
  id: string;
  title: string;
  description: string | null;
  createdAt: string;
  updatedAt: string;
  dueAt: string | null;
  status: string;
  priority: string;
  type: string;
  assignee: string | null;
  createdBy: string;
  tags: string[];
  archived: boolean;
  parent: number | null; // index of the parent row
  blocked: boolean; // some dependency is not COMPLETED
}
const seeded: Seed[] = [];
const TITLES: Record<number, string> = { 3: 'Use 100% of CPU', 4: 'snake_case names', 7: 'plain 100 percent', 8: 'snakeXcase names' };
const DESCRIPTIONS: Record<number, string> = { 5: 'lives in C:\\temp\\x', 6: 'UPPER and lower', 12: 'lives in C:temp' };
/** Task i waits for these tasks (COMPLETED ones do not block; an archived PENDING one does). */
const DEPENDS_ON: Record<number, number[]> = { 1: [2], 4: [5, 6], 7: [8], 10: [9] };
const dueOf = (i: number) => (i % 4 === 0 ? null : new Date(Date.UTC(2026, 1, 1) + (i % 7) * 3_600_000).toISOString());

const STATUSES = ['PENDING', 'IN_PROGRESS', 'COMPLETED'];
const PRIORITIES = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];
const TYPES = ['FEATURE', 'BUG_FIX', 'RESEARCH'];
// Built when the file loads, so test tables can name rows; inserted in beforeAll.
for (let i = 0; i < 30; i++) {
  const createdAt = i < 10 ? '2026-01-01T00:00:00.000Z' : new Date(Date.UTC(2026, 0, 2) + i * 1000).toISOString();
  seeded.push({
    id: randomUUID(),
    title: TITLES[i] ?? `task ${i}`,
    description: DESCRIPTIONS[i] ?? (i % 2 === 0 ? null : `about ${i}`),
    createdAt,
    updatedAt: new Date(Date.UTC(2026, 2, 1) + (i % 6) * 60_000).toISOString(),
    dueAt: dueOf(i),
    status: STATUSES[i % 3]!,
    priority: PRIORITIES[i % 4]!,
    type: TYPES[i % 3]!,
    assignee: i % 5 === 0 ? null : `user${i % 2}`,
    createdBy: `creator${i % 3}`,
    tags: i % 2 === 0 ? ['even', `n${i}`] : ['odd'],
    archived: i % 10 === 9,
    parent: i >= 20 && i < 26 ? 0 : null,
    blocked: false,
  });
}
for (const [waiter, deps] of Object.entries(DEPENDS_ON)) {
  seeded[Number(waiter)]!.blocked = deps.some((d) => seeded[d]!.status !== 'COMPLETED');
}

beforeAll(async () => {
  const c = await db.client();
  for (const row of seeded) {
    await c.query(
      `insert into task (id, title, description, type, priority, status, assignee, created_by, tags, due_at, created_at, updated_at, archived_at, parent_id)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
      [row.id, row.title, row.description, row.type, row.priority, row.status, row.assignee, row.createdBy, row.tags, row.dueAt, row.createdAt,
        row.updatedAt, row.archived ? row.createdAt : null, row.parent === null ? null : seeded[row.parent]!.id],
    );
  }
  for (const [waiter, deps] of Object.entries(DEPENDS_ON)) {
    for (const d of deps) {
      await c.query(`insert into task_dependency (task_id, depends_on_id, created_at) values ($1, $2, now())`, [seeded[Number(waiter)]!.id, seeded[d]!.id]);
    }
  }
  await c.end();
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

  const R = (i: number) => seeded[i]!;
  const has = (text: string | null, needle: string) => (text ?? '').toLowerCase().includes(needle.toLowerCase());
  const search = (needle: string) => (r: Seed) => has(r.title, needle) || has(r.description, needle);
  const DUE = '2026-02-01T03:00:00.000Z'; // the due date of some rows exactly: strict comparisons exclude them
  const UPDATED = '2026-03-01T00:02:00.000Z';
  it.each<[string, Record<string, unknown>, (r: Seed) => boolean]>([
    ['status', { status: ['PENDING', 'COMPLETED'] }, (r) => ['PENDING', 'COMPLETED'].includes(r.status)],
    ['priority', { priority: ['CRITICAL'] }, (r) => r.priority === 'CRITICAL'],
    ['type', { type: ['BUG_FIX', 'RESEARCH'] }, (r) => ['BUG_FIX', 'RESEARCH'].includes(r.type)],
    ['assignee', { assignee: ['user1'] }, (r) => r.assignee === 'user1'],
    ['tagsAny', { tagsAny: ['n4', 'odd'] }, (r) => r.tags.includes('n4') || r.tags.includes('odd')],
    ['archived ONLY', { archived: 'ONLY' }, (r) => r.archived],
    ['archived INCLUDE', { archived: 'INCLUDE' }, () => true],
    ['several at once', { status: ['PENDING'], tagsAny: ['even'] }, (r) => r.status === 'PENDING' && r.tags.includes('even')],
    ['an empty list', { status: [] }, () => false],
    ['ids', { ids: [R(1).id, R(9).id, R(20).id.toUpperCase()] }, (r) => [R(1).id, R(20).id].includes(r.id)],
    ['ids, archived included', { ids: [R(1).id, R(9).id], archived: 'INCLUDE' }, (r) => [R(1).id, R(9).id].includes(r.id)],
    ['unassigned: true', { unassigned: true }, (r) => r.assignee === null],
    ['unassigned: false', { unassigned: false }, (r) => r.assignee !== null],
    ['createdBy', { createdBy: ['creator1', 'nobody'] }, (r) => r.createdBy === 'creator1'],
    ['tagsAll', { tagsAll: ['even', 'n4'] }, (r) => r.tags.includes('even') && r.tags.includes('n4')],
    ['tagsAll that no task has', { tagsAll: ['even', 'odd'] }, () => false],
    ['an empty tagsAll', { tagsAll: [] }, () => false],
    ['parentId', { parentId: R(0).id }, (r) => r.parent === 0],
    ['isRoot: true', { isRoot: true }, (r) => r.parent === null],
    ['isRoot: false', { isRoot: false }, (r) => r.parent !== null],
    ['isBlocked: true', { isBlocked: true }, (r) => r.blocked],
    ['isBlocked: false', { isBlocked: false }, (r) => !r.blocked],
    ['search, case-insensitive, in the description', { search: 'upper AND' }, search('upper and')],
    ['search with % taken literally', { search: '100%' }, search('100%')],
    ['search with _ taken literally', { search: 'SNAKE_case' }, search('snake_case')],
    ['search with \\ taken literally', { search: 'C:\\temp' }, search('C:\\temp')],
    ['search in titles', { search: 'task 1' }, search('task 1')],
    ['dueBefore (strict)', { dueBefore: DUE }, (r) => r.dueAt !== null && r.dueAt < DUE],
    ['dueAfter (strict)', { dueAfter: DUE }, (r) => r.dueAt !== null && r.dueAt > DUE],
    ['createdAfter (strict)', { createdAfter: '2026-01-01T00:00:00.000Z' }, (r) => r.createdAt > '2026-01-01T00:00:00.000Z'],
    ['createdBefore (strict)', { createdBefore: R(15).createdAt }, (r) => r.createdAt < R(15).createdAt],
    ['updatedAfter (strict)', { updatedAfter: UPDATED }, (r) => r.updatedAt > UPDATED],
    ['or', { or: [{ status: ['PENDING'] }, { priority: ['CRITICAL'] }] }, (r) => r.status === 'PENDING' || r.priority === 'CRITICAL'],
    ['and with not', { and: [{ tagsAny: ['even'] }, { not: { status: ['PENDING'] } }] }, (r) => r.tags.includes('even') && r.status !== 'PENDING'],
    ['not over a null column', { not: { assignee: ['user1'] } }, (r) => r.assignee !== 'user1'],
    ['not over a null due date', { not: { dueBefore: DUE } }, (r) => !(r.dueAt !== null && r.dueAt < DUE)],
    ['not of a search over null descriptions', { not: { search: 'about' } }, (r) => !search('about')(r)],
    ['nested or inside not', { not: { or: [{ unassigned: true }, { isBlocked: true }] } }, (r) => !(r.assignee === null || r.blocked)],
    ['an empty or', { or: [] }, () => false],
    ['an empty and', { and: [] }, () => true],
    ['fields beside and/or', { status: ['COMPLETED'], or: [{ unassigned: true }, { priority: ['LOW'] }] }, (r) => r.status === 'COMPLETED' && (r.assignee === null || r.priority === 'LOW')],
    // Nested filters get the schema's default archived: EXCLUDE; only the top level's archived counts.
    ['archived ONLY over nested filters', { archived: 'ONLY', or: [{ status: ['PENDING'] }, { status: ['COMPLETED'] }] }, (r) => ['PENDING', 'COMPLETED'].includes(r.status)],
  ])('filters by %s', async (_name, filter, keep) => {
    const ids = await walk(filter, 4);
    const archived = filter.archived;
    const visible = seeded.filter((r) => (archived === 'ONLY' ? r.archived : archived === 'INCLUDE' ? true : !r.archived));
    const expected = expectedOrder(visible.filter(keep));
    expect(ids).toEqual(expected);
    // A filter that keeps everything or nothing would prove little (except where that is the point).
    if (!['archived ONLY', 'archived INCLUDE', 'an empty list', 'an empty and', 'an empty or', 'an empty tagsAll', 'tagsAll that no task has'].includes(_name)) {
      expect(expected.length).toBeGreaterThan(0);
      expect(expected.length).toBeLessThan(visible.length);
    }
  });

  it('nests and/or/not five levels deep, and refuses six', async () => {
    const nest = (levels: number): Record<string, unknown> => (levels === 0 ? { status: ['PENDING'] } : { and: [nest(levels - 1)] });
    const ok = await list({ filter: nest(5), first: 100 });
    expect(ok.body.errors).toBeUndefined();
    expect(ok.body.data!.tasks.edges.map((e) => e.node.id)).toEqual(expectedOrder(seeded.filter((r) => !r.archived && r.status === 'PENDING')));
    const tooDeep = await list({ filter: { not: { not: { not: { not: { not: { not: { status: ['PENDING'] } } } } } } } });
    expect(tooDeep.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'filter' });
    expect(tooDeep.body.errors?.[0]?.message).toMatch(/5 levels/);
  });

  it('refuses a filter of more than 100 conditions', async () => {
    const many = await list({ filter: { or: Array.from({ length: 100 }, () => ({ status: ['PENDING'] })) } });
    expect(many.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'filter' });
    const enough = await list({ filter: { or: Array.from({ length: 49 }, () => ({ status: ['PENDING'] })) } });
    expect(enough.body.errors).toBeUndefined();
  });

  it.each([
    [{ ids: ['not-a-uuid'] }, 'ids'],
    [{ parentId: 'nope' }, 'parentId'],
    [{ or: [{ ids: ["1' or '1'='1"] }] }, 'ids'],
  ])('refuses the malformed id in %j with BAD_USER_INPUT', async (filter, field) => {
    const r = await list({ filter });
    expect(r.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
  });

  it('treats filter strings as values, never as SQL', async () => {
    const res = await list({ filter: { assignee: ["user1' or '1'='1"], tagsAny: ["'); drop table task; --"] } });
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.tasks.edges).toEqual([]);
    for (const search of ["' or 1=1 --", "%' or '1'='1", '$1', '?', "\\'; drop table task; --"]) {
      const r = await list({ filter: { search, archived: 'INCLUDE' } });
      expect(r.body.errors).toBeUndefined();
      expect(r.body.data!.tasks.edges).toEqual([]);
    }
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

  it('counts with the page in its one statement, and counts past the last page too', async () => {
    const query = `query($after: String) { tasks(first: 3, after: $after, filter: { status: [PENDING] }) { totalCount nodes { id } pageInfo { endCursor } } }`;
    const expected = seeded.filter((r) => r.status === 'PENDING' && !r.archived).length;
    const withCount = await server.gql<{ tasks: { totalCount: number; nodes: unknown[]; pageInfo: { endCursor: string } } }>(query, {}, { 'x-request-id': 'count-with' });
    expect(withCount.body.data!.tasks.totalCount).toBe(expected);
    expect((await server.report('count-with')).sqlStatements).toBe(1);
    // totalCount ignores the cursors: past the last row the page is empty and the count the same (read on its own).
    type Page = { totalCount: number; nodes: unknown[]; pageInfo: { endCursor: string | null } };
    let after: string | null = withCount.body.data!.tasks.pageInfo.endCursor;
    let last: Page | undefined;
    for (let pages = 0; pages < 100 && after !== null; pages++) {
      const res: { body: { data?: { tasks: Page } | null } } = await server.gql<{ tasks: Page }>(query, { after });
      const page: Page = res.body.data!.tasks;
      expect(page.totalCount).toBe(expected);
      after = page.pageInfo.endCursor;
      last = page;
    }
    expect(last?.nodes).toEqual([]);
  });

  it('reads the parents of a whole page with the page, in one statement', async () => {
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
    // The page statement joins the parents (it looks ahead at the fields asked of its rows), however large the page.
    expect((await server.report('parents-batched')).sqlStatements).toBe(1);
  });
});
