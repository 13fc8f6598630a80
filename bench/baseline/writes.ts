/**
 * The baseline's writes, doing the same work as the server: the row change, its `task_event` (same kind, same
 * `{ field: { from, to } }` changes), the execution a transition opens or closes, `version` + 1 and a strictly
 * increasing `updatedAt`. createTask is one statement (the insert and its event in one CTE, atomic by itself);
 * a transition locks the row, checks the status machine in JS, then writes everything in one CTE.
 */
import { randomUUID } from 'node:crypto';
import { iso, OperationError, type Handler } from './db.js';

const ACTOR = 'anonymous';
const TYPES = new Set(['FEATURE', 'BUG_FIX', 'REFACTOR', 'DOCUMENTATION', 'RESEARCH', 'DEPLOYMENT', 'MAINTENANCE', 'DEVELOPMENT', 'OPTIMIZATION', 'SYSTEM']);
const PRIORITIES = new Set(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL']);

interface CreateInput {
  title?: unknown;
  description?: string | null;
  type?: string;
  priority?: string;
  assignee?: string | null;
  createdBy?: string | null;
  tags?: string[];
  estimatedMinutes?: number | null;
  dueAt?: string | null;
}

interface CreatedRow {
  id: string;
  title: string;
  status: string;
  priority: string;
  tags: string[];
  version: number;
  created_at: Date;
}

/** M1: createTask (the subset of its input the benchmark uses, validated as the contract says). */
export const createTask: Handler = async (db, { input }) => {
  const i = (input ?? {}) as CreateInput;
  const title = typeof i.title === 'string' ? i.title.trim() : '';
  if (title.length < 1 || title.length > 255) throw new OperationError('BAD_USER_INPUT', 'title must be 1..255 characters');
  const type = i.type ?? 'FEATURE';
  const priority = i.priority ?? 'MEDIUM';
  const tags = i.tags ?? [];
  if (!TYPES.has(type) || !PRIORITIES.has(priority)) throw new OperationError('BAD_USER_INPUT', 'unknown type or priority');
  if (tags.length > 50 || tags.some((t) => t.length < 1 || t.length > 64)) throw new OperationError('BAD_USER_INPUT', 'invalid tags');
  const now = new Date();
  const changes = { title, type, priority, status: 'PENDING', assignee: i.assignee ?? null, parentId: null };
  const [t] = await db.query<CreatedRow>(
    `with t as (
       insert into task (id, title, description, type, priority, assignee, created_by, tags, estimated_minutes, due_at, created_at, updated_at)
       values ($1, $2, $3, $4::task_type, $5::task_priority, $6, $7, $8::text[], $9, $10, $11, $11)
       returning id, title, status, priority, tags, version, created_at),
     e as (insert into task_event (task_id, kind, actor, at, changes) select id, 'CREATED', $12, $11, $13::jsonb from t)
     select * from t`,
    [randomUUID(), title, i.description ?? null, type, priority, i.assignee ?? null, i.createdBy ?? ACTOR, tags,
      i.estimatedMinutes ?? null, i.dueAt ?? null, now, ACTOR, JSON.stringify(changes)],
  );
  if (!t) throw new Error('insert returned no row');
  return { data: { createTask: { id: t.id, title: t.title, status: t.status, priority: t.priority, tags: t.tags, version: t.version, createdAt: iso(t.created_at) } } };
};

interface LockedRow {
  status: string;
  started_at: Date | null;
  completed_at: Date | null;
  updated_at: Date;
  progress: number;
  actual_minutes: number | null;
  result: string | null;
  context: Record<string, unknown>;
  blockers: number;
}

/** The next `updatedAt`: now, but strictly after the previous one. */
const nextUpdatedAt = (previous: Date, now: Date) => new Date(Math.max(now.getTime(), previous.getTime() + 1));

function assertMove(from: string, to: string, allowedFrom: readonly string[]): void {
  if (!allowedFrom.includes(from)) throw new OperationError('INVALID_TRANSITION', `A ${from} task cannot move to ${to}`);
}

const LOCK = `select status, started_at, completed_at, updated_at, progress, actual_minutes, result, context,
  (select count(*)::int from task_dependency d join task dep on dep.id = d.depends_on_id
   where d.task_id = t.id and dep.status <> 'COMPLETED') as blockers
  from task t where t.id = $1 for update of t`;

/** M2, first half: startTask (PENDING, BLOCKED or REVIEW -> IN_PROGRESS, opening an execution). */
export const startTask: Handler = async (db, { id }) =>
  db.transaction(async (q) => {
    const [t] = await q<LockedRow>(LOCK, [id]);
    if (!t) throw new OperationError('NOT_FOUND', `Task ${String(id)} does not exist`);
    assertMove(t.status, 'IN_PROGRESS', ['PENDING', 'BLOCKED', 'REVIEW']);
    if (t.blockers > 0) throw new OperationError('BLOCKED_BY_DEPENDENCY', `The task waits for ${t.blockers} task(s)`);
    const now = new Date();
    const startedAt = t.started_at ?? now;
    const changes = {
      status: { from: t.status, to: 'IN_PROGRESS' },
      ...(t.started_at ? {} : { startedAt: { from: null, to: iso(now) } }),
    };
    const [u] = await q<{ id: string; status: string; started_at: Date; version: number }>(
      `with u as (update task set status = 'IN_PROGRESS', started_at = $2, updated_at = $3, version = version + 1 where id = $1
                  returning id, status, started_at, version),
            x as (insert into task_execution (id, task_id, status, started_at, progress, context)
                  values ($4, $1, 'IN_PROGRESS', $5, $6, $7::jsonb)),
            e as (insert into task_event (task_id, kind, actor, at, changes) values ($1, 'STATUS_CHANGED', $8, $5, $9::jsonb))
       select * from u`,
      [id, startedAt, nextUpdatedAt(t.updated_at, now), randomUUID(), now, t.progress, JSON.stringify(t.context), ACTOR, JSON.stringify(changes)],
    );
    if (!u) throw new Error('update returned no row');
    return { data: { startTask: { id: u.id, status: u.status, startedAt: iso(u.started_at), version: u.version } } };
  });

/** M2, second half: completeTask (IN_PROGRESS or REVIEW -> COMPLETED, closing the open execution). */
export const completeTask: Handler = async (db, { id, result }) =>
  db.transaction(async (q) => {
    const [t] = await q<LockedRow>(LOCK, [id]);
    if (!t) throw new OperationError('NOT_FOUND', `Task ${String(id)} does not exist`);
    assertMove(t.status, 'COMPLETED', ['IN_PROGRESS', 'REVIEW']);
    const now = new Date();
    const actualMinutes = t.started_at ? Math.round((now.getTime() - t.started_at.getTime()) / 60_000) : 0;
    const newResult = typeof result === 'string' ? result : t.result;
    const changes: Record<string, { from: unknown; to: unknown }> = { status: { from: t.status, to: 'COMPLETED' } };
    if (t.progress !== 1) changes.progress = { from: t.progress, to: 1 };
    if (newResult !== t.result) changes.result = { from: t.result, to: newResult };
    if (actualMinutes !== t.actual_minutes) changes.actualMinutes = { from: t.actual_minutes, to: actualMinutes };
    changes.completedAt = { from: iso(t.completed_at), to: iso(now) };
    const [u] = await q<{ id: string; status: string; progress: number; actual_minutes: number; completed_at: Date; version: number }>(
      `with u as (update task set status = 'COMPLETED', completed_at = $2, progress = 1, actual_minutes = $3, result = $4,
                         updated_at = $5, version = version + 1 where id = $1
                  returning id, status, progress, actual_minutes, completed_at, version),
            x as (update task_execution set status = 'COMPLETED', completed_at = $2, progress = 1 where task_id = $1 and completed_at is null),
            e as (insert into task_event (task_id, kind, actor, at, changes) values ($1, 'STATUS_CHANGED', $6, $2, $7::jsonb))
       select * from u`,
      [id, now, actualMinutes, newResult, nextUpdatedAt(t.updated_at, now), ACTOR, JSON.stringify(changes)],
    );
    if (!u) throw new Error('update returned no row');
    const completeTask = { id: u.id, status: u.status, progress: u.progress, actualMinutes: u.actual_minutes, completedAt: iso(u.completed_at), version: u.version };
    return { data: { completeTask } };
  });
