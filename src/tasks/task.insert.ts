/**
 * Creating one task in one statement: the `task` row and its CREATED event inserted together by a CTE, inside the
 * caller's transaction. Against the unit of work (an INSERT per table plus change-set computation and entity
 * bookkeeping) it saves a round trip and most of the CPU of a `createTask`; the rules stay where they were
 * (validation in task.validation.ts, the idempotent client id and the parent check in TaskService).
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { query, sql } from '../db/sql.js';
import type { TaskRow } from './task.record.js';
import type { NewTask } from './task.validation.js';

/**
 * Inserts `item` as task `id` (status PENDING, version 1, created and updated `now`) and its CREATED event by
 * `actor` with the same changes the ORM path records; returns the new row.
 */
export async function insertTask(tx: EntityManager, id: string, item: NewTask, actor: string, now: Date): Promise<TaskRow> {
  const { title, type, priority, assignee, parentId } = item;
  const changes = { title, type, priority, status: 'PENDING', assignee, parentId };
  // Instants travel as ISO strings (as in filters.ts), never as driver-formatted local times.
  const at = now.toISOString();
  const rows = await query<TaskRow>(
    tx,
    sql`with created as (
      insert into task (id, title, description, type, priority, status, assignee, created_by, tags, metadata, context,
                        estimated_minutes, due_at, parent_id, created_at, updated_at, version)
      values (${id}::uuid, ${title}, ${item.description}, ${type}::task_type, ${priority}::task_priority, 'PENDING',
              ${assignee}, ${item.createdBy}, ${item.tags}::text[], ${JSON.stringify(item.metadata)}::jsonb,
              ${JSON.stringify(item.context)}::jsonb, ${item.estimatedMinutes}::int, ${item.dueAt?.toISOString() ?? null}::timestamptz,
              ${parentId}::uuid, ${at}::timestamptz, ${at}::timestamptz, 1)
      returning *
    ), event as (
      insert into task_event (task_id, kind, actor, at, changes)
      select created.id, 'CREATED', ${actor}, ${at}::timestamptz, ${JSON.stringify(changes)}::jsonb from created
    )
    select * from created`,
  );
  return rows[0] as TaskRow;
}
