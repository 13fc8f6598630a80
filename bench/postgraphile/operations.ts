/**
 * The benchmarked operations in PostGraphile's schema (bench/postgraphile/server.ts: the amber preset over the bench
 * database), asking for the same data as ours, and how its answers map to ours for the same-data check.
 *
 * - Q1: `taskByRowId` with the same 17 columns.
 * - Q2: `allTasks` with `statusIn`/`priorityIn` (list conditions the server adds), unarchived, by priority then id
 *   descending; the parent through `taskByParentId`, the dependencies through the `task_dependency` rows in our
 *   order (created, then id). PostGraphile has no `isBlocked`: the check derives it from the dependencies' statuses,
 *   which the response carries.
 * - Q3: `allTasks(condition: { assignee, archivedAt: null })`, newest first, with `totalCount`.
 * - Q4: `allTasks` after the cursor of row 5,000 of the newest-first order, walked on PostGraphile itself (its cursors
 *   are its own).
 * - M1: `createTask` with what the table has no defaults for (id, type, created_by, created_at, updated_at) supplied by
 *   the client; it inserts the task alone: no `task_event` row, so no NOTIFY either.
 * - M2 is not run: see {@link POSTGRAPHILE_NOT_RUN}.
 */
import { randomUUID } from 'node:crypto';
import type { OpName } from '../options.js';
import { readVariables, type Dialect, type ReadFixtures, type ReadName } from '../operations.js';

const Q1_FIELDS = 'rowId title description type priority status assignee createdBy tags metadata progress retryCount estimatedMinutes dueAt createdAt updatedAt version';
/** Our default order (newest first), unarchived, as Q4 and its walk read it. */
const NEWEST = 'condition: { archivedAt: null }, orderBy: [CREATED_AT_DESC, ROW_ID_DESC]';

export const POSTGRAPHILE_DOCS = {
  Q1: `query Q1($id: UUID!) { taskByRowId(rowId: $id) { ${Q1_FIELDS} } }`,
  Q2: `query Q2($status: [TaskStatus!], $first: Int = 50) {
  allTasks(first: $first, condition: { statusIn: $status, priorityIn: [HIGH, CRITICAL], archivedAt: null }, orderBy: [PRIORITY_DESC, ROW_ID_DESC]) {
    edges { cursor node { rowId title status priority assignee dueAt taskByParentId { rowId title }
      taskDependenciesByTaskId(orderBy: [CREATED_AT_ASC, DEPENDS_ON_ID_ASC]) { nodes { taskByDependsOnId { rowId status } } } } }
    pageInfo { hasNextPage endCursor }
  }
}`,
  Q3: `query Q3($assignee: String!) {
  allTasks(first: 20, condition: { assignee: $assignee, archivedAt: null }, orderBy: [CREATED_AT_DESC, ROW_ID_DESC]) {
    totalCount
    nodes { rowId title status priority dueAt createdAt }
    pageInfo { hasNextPage endCursor }
  }
}`,
  Q4: `query Q4($after: Cursor!) {
  allTasks(first: 50, after: $after, ${NEWEST}) {
    edges { cursor node { rowId title status priority assignee createdAt } }
    pageInfo { hasNextPage endCursor }
  }
}`,
  Walk: `query Walk($after: Cursor) { allTasks(first: 100, after: $after, ${NEWEST}) { pageInfo { endCursor hasNextPage } } }`,
  M1: `mutation M1($input: CreateTaskInput!) { createTask(input: $input) { task { rowId title status priority tags version createdAt } } }`,
} as const;

/** What differs in the work PostGraphile does for an operation (printed under the report's tables). */
export const POSTGRAPHILE_NOTES: Partial<Record<OpName, string>> = {
  M1: 'its createTask inserts the task alone (no task_event row, so no NOTIFY): judge writes against the baseline, which does our work',
  MIX: 'its two createTasks in ten insert the task alone (see M1)',
};

/** Why an operation is not run on PostGraphile (the report prints "n/a" and this). */
export const POSTGRAPHILE_NOT_RUN: Partial<Record<OpName, string>> = {
  M2: 'startTask/completeTask are not expressible in its CRUD schema: the status machine, the blocker check, version + 1, the execution and the event need custom SQL functions or plugins',
};

const post = (operationName: keyof typeof POSTGRAPHILE_DOCS, variables: Record<string, unknown>) =>
  JSON.stringify({ operationName, query: POSTGRAPHILE_DOCS[operationName], variables });

/** The same variables as ours for the same request number (Q4's cursor is PostGraphile's own, in `f`). */
const readBody = (name: ReadName, f: ReadFixtures, i: number): string => post(name, readVariables(name, f, i));

/** Our M1's task, with the columns the table has no default for supplied as our server would fill them. */
function m1Body(i: number): string {
  const now = new Date().toISOString();
  const task = {
    rowId: randomUUID(), title: `Bench task ${i}`, type: 'FEATURE', priority: 'LOW', createdBy: 'anonymous', tags: ['bench', 'load'],
    estimatedMinutes: 30, createdAt: now, updatedAt: now,
  };
  return post('M1', { input: { task } });
}

async function walkDeepCursor(url: string, rows: number): Promise<string> {
  let after: string | null = null;
  for (let walked = 0; walked < rows; walked += 100) {
    const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: post('Walk', { after }) });
    const json = (await res.json()) as { data?: { allTasks?: { pageInfo?: { endCursor?: string | null } } } };
    const next = json.data?.allTasks?.pageInfo?.endCursor;
    if (!next) throw new Error(`walking PostGraphile to row ${rows} failed at row ${walked}: ${JSON.stringify(json).slice(0, 400)}`);
    after = next;
  }
  return after as string;
}

export const POSTGRAPHILE_DIALECT: Dialect = { readBody, m1Body, walkDeepCursor };

type Json = Record<string, unknown>;
/** PostGraphile's Datetime (`2025-01-01T00:18:56.536000+00:00`) as ours (`2025-01-01T00:18:56.536Z`). */
const iso = (v: unknown) => (typeof v === 'string' ? new Date(v).toISOString() : v);
const obj = (v: unknown) => (v ?? {}) as Json;
const list = (v: unknown) => (Array.isArray(v) ? (v as unknown[]) : []);

/** A PostGraphile task as ours, with `fields` in our selection's order (`id` for `rowId`, timestamps as ours). */
function task(t: unknown, fields: readonly string[]): Json | null {
  if (t === null || t === undefined) return null;
  const row = obj(t);
  return Object.fromEntries(fields.map((f) => [f, f === 'id' ? row.rowId : f.endsWith('At') ? iso(row[f]) : row[f]]));
}

const pageInfo = (v: unknown) => ({ hasNextPage: obj(v).hasNextPage });

/**
 * PostGraphile's `data` for operation `op` in the shape of ours, without cursors (each server has its own); compare
 * it with {@link withoutCursors} of our `data`.
 */
export function postgraphileAsOurs(op: 'Q1' | 'Q2' | 'Q3' | 'Q4' | 'M1', data: Json): Json {
  switch (op) {
    case 'Q1':
      return { task: task(data.taskByRowId, ['id', ...Q1_FIELDS.split(' ').slice(1)]) };
    case 'Q2': {
      const page = obj(data.allTasks);
      const edges = list(page.edges).map((e) => {
        const n = obj(obj(e).node);
        const dependencies = list(obj(n.taskDependenciesByTaskId).nodes).map((d) => task(obj(d).taskByDependsOnId, ['id', 'status']));
        return {
          node: {
            ...task(n, ['id', 'title', 'status', 'priority', 'assignee', 'dueAt']),
            parent: task(n.taskByParentId, ['id', 'title']),
            dependencies,
            isBlocked: dependencies.some((d) => d?.status !== 'COMPLETED'),
          },
        };
      });
      return { tasks: { edges, pageInfo: pageInfo(page.pageInfo) } };
    }
    case 'Q3': {
      const page = obj(data.allTasks);
      const nodes = list(page.nodes).map((n) => task(n, ['id', 'title', 'status', 'priority', 'dueAt', 'createdAt']));
      return { tasks: { totalCount: page.totalCount, nodes, pageInfo: pageInfo(page.pageInfo) } };
    }
    case 'Q4': {
      const page = obj(data.allTasks);
      const edges = list(page.edges).map((e) => ({ node: task(obj(e).node, ['id', 'title', 'status', 'priority', 'assignee', 'createdAt']) }));
      return { tasks: { edges, pageInfo: pageInfo(page.pageInfo) } };
    }
    case 'M1':
      return { createTask: task(obj(data.createTask).task, ['id', 'title', 'status', 'priority', 'tags', 'version', 'createdAt']) };
  }
}

/** Our `data` without `cursor` and `endCursor` (a server's cursors are its own). */
export function withoutCursors(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutCursors);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).filter(([k]) => k !== 'cursor' && k !== 'endCursor').map(([k, v]) => [k, withoutCursors(v)]));
}
