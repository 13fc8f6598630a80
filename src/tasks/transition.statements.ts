/**
 * A status change in two statements inside its transaction: one locks the task and reads its blockers, one CTE
 * writes the task, its STATUS_CHANGED event and the execution it opens or closes. Against the unit of work (a
 * SELECT per lookup, then an UPDATE and an INSERT per table at flush) that is 4 round trips instead of 7 for
 * startTask and completeTask, and no entity bookkeeping; the rules stay in StatusService and transitions.ts.
 */
import { query, raw, sql, type SqlContext } from '../db/sql.js';
import type { JsonObject, TaskStatus } from './task.entity.js';
import { isoOrNull, type TaskRecord, type TaskRow } from './task.record.js';

/** The locked row, and the ids of its dependencies that are not COMPLETED when asked for (in id order). */
export interface LockedTask {
  row: TaskRow;
  blockers: string[];
}

const BLOCKERS = raw(`(select coalesce(array_agg(dep.id order by dep.id), '{}') from task_dependency d
    join task dep on dep.id = d.depends_on_id where d.task_id = t.id and dep.status <> 'COMPLETED')`);

/**
 * Locks task `id` FOR UPDATE (concurrent changes to it queue up) and, with `withBlockers`, reads its blockers in
 * the same statement. Null when the task does not exist.
 */
export async function lockForTransition(tx: SqlContext, id: string, withBlockers: boolean): Promise<LockedTask | null> {
  const [found] = await query<TaskRow & { blockers: string[] | null }>(
    tx,
    sql`select t.*, ${withBlockers ? BLOCKERS : raw('null::uuid[]')} as blockers from task t where t.id = ${id}::uuid for update of t`,
  );
  if (!found) return null;
  const { blockers, ...row } = found;
  return { row, blockers: blockers ?? [] };
}

/** What a transition writes besides the task's fields. */
export interface TransitionWrite {
  /** The task as it is after the transition, with its next `updatedAt`. */
  task: TaskRecord;
  from: TaskStatus;
  actor: string;
  /** The event's `{ field: { from, to } }`. */
  changes: JsonObject;
  now: Date;
  /** The id of the execution to open (entering IN_PROGRESS). */
  openExecutionId?: string;
}

/**
 * Writes a transition: the task's status fields, its next `updatedAt` and version + 1, the STATUS_CHANGED event,
 * and the execution: opened entering IN_PROGRESS, closed with the new status leaving it (the two never happen in
 * one transition). Returns the updated row.
 */
export async function writeTransition(tx: SqlContext, w: TransitionWrite): Promise<TaskRow> {
  const { task, now } = w;
  const at = now.toISOString();
  const execution =
    w.openExecutionId !== undefined
      ? sql`, opened as (
          insert into task_execution (id, task_id, status, started_at, progress, context)
          values (${w.openExecutionId}::uuid, ${task.id}::uuid, 'IN_PROGRESS', ${at}::timestamptz, ${task.progress}::float8,
                  ${JSON.stringify(task.context)}::jsonb)
        )`
      : w.from === 'IN_PROGRESS'
        ? sql`, closed as (
            update task_execution set status = ${task.status}::task_status, completed_at = ${at}::timestamptz,
                   progress = ${task.progress}::float8
             where task_id = ${task.id}::uuid and completed_at is null
          )`
        : raw('');
  const rows = await query<TaskRow>(
    tx,
    sql`with updated as (
      update task set status = ${task.status}::task_status, started_at = ${isoOrNull(task.startedAt)}::timestamptz,
             completed_at = ${isoOrNull(task.completedAt)}::timestamptz, retry_count = ${task.retryCount}::int,
             progress = ${task.progress}::float8, actual_minutes = ${task.actualMinutes ?? null}::int,
             result = ${task.result ?? null}::text, error_message = ${task.errorMessage ?? null}::text,
             updated_at = ${task.updatedAt.toISOString()}::timestamptz, version = version + 1
       where id = ${task.id}::uuid
      returning *
    ), event as (
      insert into task_event (task_id, kind, actor, at, changes)
      values (${task.id}::uuid, 'STATUS_CHANGED', ${w.actor}, ${at}::timestamptz, ${JSON.stringify(w.changes)}::jsonb)
    )${execution}
    select * from updated`,
  );
  const [row] = rows;
  if (!row) throw new Error(`task ${task.id} vanished while locked`);
  return row;
}
