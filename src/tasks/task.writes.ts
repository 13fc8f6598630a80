/**
 * Changing tasks with hand-written statements inside a service's transaction: lock the rows, compute the change on
 * a plain record, write the row and its event in one statement.
 *
 * Why not the unit of work: its change sets, snapshots and hydration cost more CPU than the statements, and on
 * Node 20 its AsyncLocalStorage installed promise hooks for the life of the process (18-24% of a read's CPU; Node 24
 * needs none, test/tasks/async-hooks.test.ts). The statements here do what the flush did (the row, version + 1, the
 * event), with the rules unchanged (events.ts, the services).
 */
import { AppError } from '../errors.js';
import { query, sql, type SqlContext } from '../db/sql.js';
import type { EventKind } from './event.entity.js';
import type { JsonObject } from './task.entity.js';
import { copyRecord, isoOrNull, taskRecordMapper, type TaskRecord, type TaskRow } from './task.record.js';
import { diff, nextUpdatedAt, snapshot } from './events.js';

/**
 * Locks task `id` FOR UPDATE (concurrent changes to it queue up). NOT_FOUND if absent, VERSION_CONFLICT if
 * `expectedVersion` is given and stale.
 */
export async function lockTask(tx: SqlContext, id: string, expectedVersion?: number | null): Promise<TaskRecord> {
  const [row] = await query<TaskRow>(tx, sql`select t.* from task t where t.id = ${id}::uuid for update`);
  if (!row) throw AppError.notFound('Task', id);
  const task = taskRecordMapper(tx.getPlatform())(row);
  if (expectedVersion != null && task.version !== expectedVersion) throw AppError.versionConflict(id, expectedVersion, task.version);
  return task;
}

/** Locks the tasks matching `where` (a condition on `t`) FOR UPDATE, in id order: concurrent batches queue up instead of deadlocking. */
export async function lockTasksWhere(tx: SqlContext, where: ReturnType<typeof sql>): Promise<TaskRecord[]> {
  const rows = await query<TaskRow>(tx, sql`select t.* from task t where ${where} order by t.id for update`);
  const toRecord = taskRecordMapper(tx.getPlatform());
  return rows.map(toRecord);
}

/** Inserts one event of `taskId` (the trigger on task_event wakes the subscription listeners). */
export async function insertEvent(tx: SqlContext, taskId: string, kind: EventKind, actor: string, changes: JsonObject, at = new Date()): Promise<void> {
  await query(tx, sql`insert into task_event (task_id, kind, actor, at, changes) values (${taskId}::uuid, ${kind}, ${actor}, ${at.toISOString()}::timestamptz, ${JSON.stringify(changes)}::jsonb)`);
}

/** What {@link changeTask} did. */
export interface TaskChange {
  /** The task as stored afterwards (the same record when nothing changed). */
  task: TaskRecord;
  changed: boolean;
}

/**
 * Applies `mutate` to a copy of the (locked) `task`; if that changed anything (or `extra` reports something),
 * writes the row with the next `updatedAt` and version + 1 and records the event, in one statement.
 */
export async function changeTask(
  tx: SqlContext,
  task: TaskRecord,
  kind: EventKind,
  actor: string,
  mutate: (draft: TaskRecord) => void,
  extra: JsonObject = {},
): Promise<TaskChange> {
  const draft = copyRecord(task);
  mutate(draft);
  const changes = { ...diff(snapshot(task), snapshot(draft)), ...extra };
  if (Object.keys(changes).length === 0) return { task, changed: false };
  const now = new Date();
  draft.updatedAt = nextUpdatedAt(task.updatedAt, now.getTime());
  const [row] = await query<TaskRow>(
    tx,
    sql`with updated as (
      update task set title = ${draft.title}::text, description = ${draft.description ?? null}::text, type = ${draft.type}::task_type,
             priority = ${draft.priority}::task_priority, status = ${draft.status}::task_status, assignee = ${draft.assignee ?? null}::text,
             tags = ${draft.tags}::text[], metadata = ${JSON.stringify(draft.metadata)}::jsonb, context = ${JSON.stringify(draft.context)}::jsonb,
             progress = ${draft.progress}::float8, result = ${draft.result ?? null}::text, error_message = ${draft.errorMessage ?? null}::text,
             retry_count = ${draft.retryCount}::int, estimated_minutes = ${draft.estimatedMinutes ?? null}::int,
             actual_minutes = ${draft.actualMinutes ?? null}::int, due_at = ${isoOrNull(draft.dueAt)}::timestamptz,
             started_at = ${isoOrNull(draft.startedAt)}::timestamptz, completed_at = ${isoOrNull(draft.completedAt)}::timestamptz,
             archived_at = ${isoOrNull(draft.archivedAt)}::timestamptz, parent_id = ${draft.parent?.id ?? null}::uuid,
             updated_at = ${draft.updatedAt.toISOString()}::timestamptz, version = version + 1
       where id = ${task.id}::uuid
      returning *
    ), event as (
      insert into task_event (task_id, kind, actor, at, changes)
      values (${task.id}::uuid, ${kind}, ${actor}, ${now.toISOString()}::timestamptz, ${JSON.stringify(changes)}::jsonb)
    )
    select * from updated`,
  );
  if (!row) throw new Error(`task ${task.id} vanished while locked`);
  return { task: taskRecordMapper(tx.getPlatform())(row), changed: true };
}
