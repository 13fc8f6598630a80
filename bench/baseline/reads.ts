/**
 * The baseline's reads: what a careful engineer would write by hand for the four benchmarked queries. Each is
 * one statement (related rows come back aggregated in the same row), and each builds its response object with
 * keys in the order of the query's selection, so the bytes equal what Apollo sends for the same request.
 */
import { decodeCursor, encodeCursor, iso, OperationError, type Handler } from './db.js';

/** The orders of the listings, as the server signs their cursors. */
const BY_PRIORITY_DESC = 'PRIORITY:D,ID:D';
const BY_CREATED_DESC = 'CREATED_AT:D,ID:D';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface Q1Row {
  id: string;
  title: string;
  description: string | null;
  type: string;
  priority: string;
  status: string;
  assignee: string | null;
  created_by: string;
  tags: string[];
  metadata: Record<string, unknown>;
  progress: number;
  retry_count: number;
  estimated_minutes: number | null;
  due_at: Date | null;
  created_at: Date;
  updated_at: Date;
  version: number;
}

/** Q1: `task(id)`. */
export const taskById: Handler = async (db, { id }) => {
  if (typeof id !== 'string' || !UUID.test(id)) throw new OperationError('BAD_USER_INPUT', 'id must be a UUID');
  const [t] = await db.query<Q1Row>(
    `select id, title, description, type, priority, status, assignee, created_by, tags, metadata, progress, retry_count,
            estimated_minutes, due_at, created_at, updated_at, version
     from task where id = $1`,
    [id.toLowerCase()],
  );
  const task = t && {
    id: t.id, title: t.title, description: t.description, type: t.type, priority: t.priority, status: t.status,
    assignee: t.assignee, createdBy: t.created_by, tags: t.tags, metadata: t.metadata, progress: t.progress,
    retryCount: t.retry_count, estimatedMinutes: t.estimated_minutes, dueAt: iso(t.due_at), createdAt: iso(t.created_at),
    updatedAt: iso(t.updated_at), version: t.version,
  };
  return { data: { task: task ?? null } };
};

/** `first` as the contract reads it: default 50, 0..100. */
function pageSize(first: unknown): number {
  if (first == null) return 50;
  if (typeof first !== 'number' || !Number.isInteger(first) || first < 0 || first > 100) {
    throw new OperationError('BAD_USER_INPUT', 'first must be from 0 to 100');
  }
  return first;
}

interface Q2Row {
  id: string;
  title: string;
  status: string;
  priority: string;
  assignee: string | null;
  due_at: Date | null;
  parent_id: string | null;
  parent_title: string | null;
  deps: Array<{ id: string; status: string }>;
}

/** Q2: HIGH and CRITICAL tasks in some statuses, by priority, with parent, dependencies and isBlocked. */
export const prioritizedPage: Handler = async (db, { status, first }) => {
  const limit = pageSize(first);
  const statuses = Array.isArray(status) ? (status as string[]) : null;
  const rows = await db.query<Q2Row>(
    `select t.id, t.title, t.status, t.priority, t.assignee, t.due_at, p.id as parent_id, p.title as parent_title,
            coalesce((select json_agg(json_build_object('id', dep.id, 'status', dep.status) order by d.created_at, dep.id)
                      from task_dependency d join task dep on dep.id = d.depends_on_id where d.task_id = t.id), '[]') as deps
     from task t left join task p on p.id = t.parent_id
     where t.archived_at is null and ($1::task_status[] is null or t.status = any($1::task_status[]))
       and t.priority in ('HIGH', 'CRITICAL')
     order by t.priority desc, t.id desc limit $2`,
    [statuses, limit + 1],
  );
  const page = rows.slice(0, limit);
  const edges = page.map((t) => ({
    cursor: encodeCursor(BY_PRIORITY_DESC, [t.priority, t.id]),
    node: {
      id: t.id, title: t.title, status: t.status, priority: t.priority, assignee: t.assignee, dueAt: iso(t.due_at),
      parent: t.parent_id === null ? null : { id: t.parent_id, title: t.parent_title },
      dependencies: t.deps,
      isBlocked: t.deps.some((d) => d.status !== 'COMPLETED'),
    },
  }));
  return { data: { tasks: { edges, pageInfo: { hasNextPage: rows.length > limit, endCursor: edges.at(-1)?.cursor ?? null } } } };
};

interface Q3Row {
  id: string;
  title: string;
  status: string;
  priority: string;
  due_at: Date | null;
  created_at: Date;
  total: number;
}

/** Q3: one assignee's newest tasks and how many they have; the count rides along as an uncorrelated subquery. */
export const assigneePage: Handler = async (db, { assignee }) => {
  if (typeof assignee !== 'string') throw new OperationError('BAD_USER_INPUT', 'assignee must be a string');
  const where = 'archived_at is null and assignee = $1';
  const rows = await db.query<Q3Row>(
    `select id, title, status, priority, due_at, created_at, (select count(*)::int from task where ${where}) as total
     from task where ${where} order by created_at desc, id desc limit 21`,
    [assignee],
  );
  // An empty page carries no row to bring the count: it is 0 then, since this listing has no cursor.
  const totalCount = rows[0]?.total ?? 0;
  const page = rows.slice(0, 20);
  const cursors = page.map((t) => encodeCursor(BY_CREATED_DESC, [iso(t.created_at), t.id]));
  return {
    data: {
      tasks: {
        totalCount,
        nodes: page.map((t) => ({ id: t.id, title: t.title, status: t.status, priority: t.priority, dueAt: iso(t.due_at), createdAt: iso(t.created_at) })),
        pageInfo: { hasNextPage: rows.length > 20, endCursor: cursors.at(-1) ?? null },
      },
    },
  };
};

interface Q4Row {
  id: string;
  title: string;
  status: string;
  priority: string;
  assignee: string | null;
  created_at: Date;
}

/** Q4: a page deep in the default order (newest first), from a keyset cursor. */
export const deepPage: Handler = async (db, { after }) => {
  const [createdAt, id] = decodeCursor(String(after), BY_CREATED_DESC, 2);
  const rows = await db.query<Q4Row>(
    `select id, title, status, priority, assignee, created_at from task
     where archived_at is null and (created_at, id) < ($1::timestamptz, $2::uuid)
     order by created_at desc, id desc limit 51`,
    [createdAt, id],
  );
  const edges = rows.slice(0, 50).map((t) => ({
    cursor: encodeCursor(BY_CREATED_DESC, [iso(t.created_at), t.id]),
    node: { id: t.id, title: t.title, status: t.status, priority: t.priority, assignee: t.assignee, createdAt: iso(t.created_at) },
  }));
  return { data: { tasks: { edges, pageInfo: { hasNextPage: rows.length > 50, endCursor: edges.at(-1)?.cursor ?? null } } } };
};
