import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';

const { db, server } = useServer('stats');

const STATUSES = ['PENDING', 'IN_PROGRESS', 'REVIEW', 'BLOCKED', 'COMPLETED', 'FAILED', 'CANCELLED'];
const PRIORITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW'];
const TYPES = ['FEATURE', 'BUG_FIX', 'REFACTOR', 'DOCUMENTATION', 'RESEARCH', 'DEPLOYMENT', 'MAINTENANCE', 'DEVELOPMENT', 'OPTIMIZATION', 'SYSTEM'];
// alice and bob tie on count, and so do carol and the unassigned: the order then goes by name, unassigned last.
const ASSIGNEES = [null, 'bob', 'alice', 'carol', 'alice', 'bob'];

interface Seed {
  id: string;
  status: string;
  priority: string;
  type: string;
  assignee: string | null;
  dueAt: string | null;
  archived: boolean;
  blocked: boolean;
}
interface Stats {
  total: number;
  byStatus: Array<{ status: string; count: number }>;
  byPriority: Array<{ priority: string; count: number }>;
  byType: Array<{ type: string; count: number }>;
  byAssignee: Array<{ assignee: string | null; count: number }>;
  overdue: number;
  blocked: number;
}

const seeded: Seed[] = Array.from({ length: 36 }, (_, i) => ({
  id: randomUUID(),
  status: STATUSES[i % 7]!,
  // MEDIUM never occurs and only three types do: the zeros must still be listed.
  priority: ['CRITICAL', 'HIGH', 'LOW'][i % 3]!,
  type: TYPES[i % 3]!,
  assignee: ASSIGNEES[i % 6]!,
  dueAt: i % 5 === 0 ? '2020-01-01T00:00:00.000Z' : i % 5 === 1 ? '2099-01-01T00:00:00.000Z' : null,
  archived: i % 9 === 8,
  blocked: false,
}));
/** Task i waits for these; a dependency that is not COMPLETED blocks (STATUSES[4] is COMPLETED). */
const DEPENDS_ON: Record<number, number[]> = { 0: [4], 1: [2], 3: [4, 5], 7: [8], 10: [11, 12], 17: [11] };
for (const [w, deps] of Object.entries(DEPENDS_ON)) seeded[Number(w)]!.blocked = deps.some((d) => seeded[d]!.status !== 'COMPLETED');

/** The statistics of `rows`, computed independently of the server. */
function expectedStats(rows: Seed[]): Stats {
  const count = (keep: (r: Seed) => boolean) => rows.filter(keep).length;
  const assignees = [...new Set(rows.map((r) => r.assignee))].map((assignee) => ({ assignee, count: count((r) => r.assignee === assignee) }));
  assignees.sort((a, b) => b.count - a.count || (a.assignee === null ? 1 : b.assignee === null ? -1 : a.assignee < b.assignee ? -1 : 1));
  return {
    total: rows.length,
    byStatus: STATUSES.map((status) => ({ status, count: count((r) => r.status === status) })),
    byPriority: PRIORITIES.map((priority) => ({ priority, count: count((r) => r.priority === priority) })),
    byType: TYPES.map((type) => ({ type, count: count((r) => r.type === type) })),
    byAssignee: assignees,
    overdue: count((r) => r.dueAt !== null && r.dueAt < new Date().toISOString() && !['COMPLETED', 'CANCELLED'].includes(r.status)),
    blocked: count((r) => r.blocked),
  };
}

const STATS = `query Stats($filter: TaskFilter) { taskStatistics(filter: $filter) {
  total byStatus { status count } byPriority { priority count } byType { type count } byAssignee { assignee count } overdue blocked } }`;

async function stats(filter: Record<string, unknown> | null, requestId?: string): Promise<Stats> {
  const res = await server.gql<{ taskStatistics: Stats }>(STATS, { filter }, requestId ? { 'x-request-id': requestId } : {});
  expect(res.body.errors).toBeUndefined();
  return res.body.data!.taskStatistics;
}

beforeAll(async () => {
  const c = await db.client();
  for (const r of seeded) {
    await c.query(
      `insert into task (id, title, type, priority, status, assignee, created_by, due_at, created_at, updated_at, archived_at)
       values ($1, 'stat', $2, $3, $4, $5, 'seed', $6, now(), now(), $7)`,
      [r.id, r.type, r.priority, r.status, r.assignee, r.dueAt, r.archived ? new Date() : null],
    );
  }
  for (const [w, deps] of Object.entries(DEPENDS_ON)) {
    for (const d of deps) {
      await c.query(`insert into task_dependency (task_id, depends_on_id, created_at) values ($1, $2, now())`, [seeded[Number(w)]!.id, seeded[d]!.id]);
    }
  }
});

describe('taskStatistics', () => {
  it('counts live tasks by default, every status, priority and type listed in the contract’s order', async () => {
    const got = await stats(null, 'stats-default');
    const want = expectedStats(seeded.filter((r) => !r.archived));
    expect(got).toEqual(want);
    // The arrangement covers what the contract asks for: zeros, ties, overdue and blocked tasks.
    expect(got.byPriority.map((p) => p.priority)).toEqual(['CRITICAL', 'HIGH', 'MEDIUM', 'LOW']);
    expect(got.byPriority.find((p) => p.priority === 'MEDIUM')!.count).toBe(0);
    expect(got.byType).toHaveLength(10);
    expect(got.byAssignee.map((a) => a.assignee)).toEqual(['alice', 'bob', 'carol', null]);
    expect(got.overdue).toBeGreaterThan(0);
    expect(got.blocked).toBeGreaterThan(0);
  });

  it('computes everything in one SQL statement', async () => {
    await stats(null, 'stats-one');
    expect((await server.report('stats-one')).sqlStatements).toBe(1);
  });

  it.each<[string, Record<string, unknown>, (r: Seed) => boolean]>([
    ['archived INCLUDE', { archived: 'INCLUDE' }, () => true],
    ['archived ONLY', { archived: 'ONLY' }, (r) => r.archived],
    ['an assignee', { assignee: ['alice'] }, (r) => !r.archived && r.assignee === 'alice'],
    ['unassigned', { unassigned: true }, (r) => !r.archived && r.assignee === null],
    ['finished statuses (never overdue)', { status: ['COMPLETED', 'CANCELLED'] }, (r) => !r.archived && ['COMPLETED', 'CANCELLED'].includes(r.status)],
    ['isBlocked', { isBlocked: true }, (r) => !r.archived && r.blocked],
    ['or', { or: [{ priority: ['CRITICAL'] }, { type: ['BUG_FIX'] }] }, (r) => !r.archived && (r.priority === 'CRITICAL' || r.type === 'BUG_FIX')],
  ])('applies the filter: %s', async (_name, filter, keep) => {
    const want = expectedStats(seeded.filter(keep));
    expect(want.total).toBeGreaterThan(0);
    expect(await stats(filter)).toEqual(want);
  });

  it('lists zeros when nothing matches', async () => {
    const got = await stats({ ids: [randomUUID()] });
    expect(got).toEqual(expectedStats([]));
    expect(got.byStatus.every((s) => s.count === 0)).toBe(true);
    expect(got.byStatus).toHaveLength(7);
    expect(got.byAssignee).toEqual([]);
  });

  it('refuses a malformed filter with BAD_USER_INPUT', async () => {
    const res = await server.gql(STATS, { filter: { parentId: 'x' } });
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'parentId' });
  });
});
