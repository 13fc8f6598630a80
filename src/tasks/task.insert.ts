/**
 * Creating one task in one statement: a CTE checks the client-supplied id and the parent, inserts the `task` row
 * and its CREATED event, and returns the new row or the one that existed. A single statement is atomic on its own,
 * so `createTask` runs it outside any explicit transaction: one round trip instead of BEGIN, statement, COMMIT.
 * Against the unit of work (an INSERT per table plus change-set computation and entity bookkeeping) it saves most
 * of the CPU of a `createTask` as well; the rules stay where they were (validation in task.validation.ts, the
 * outcomes and the race of client ids in TaskService).
 */
import { join, query, raw, sql, type SqlContext } from '../db/sql.js';
import type { TaskColumns } from './task.columns.js';
import type { TaskRow } from './task.record.js';
import type { NewTask } from './task.validation.js';

/** What {@link insertTask} found or did. */
export type InsertOutcome =
  | { kind: 'created'; row: TaskRow }
  /** A task with the client-supplied id existed already: returned unchanged, nothing inserted. */
  | { kind: 'existing'; row: TaskRow }
  /** The parent does not exist: nothing inserted. */
  | { kind: 'no-parent' };

/** How {@link insertTask} writes. */
export interface InsertOptions {
  /** The id came from the client: it may exist already (then that task is returned unchanged). */
  clientId?: boolean;
  /** The columns to return (the operation's, task.columns.ts); every column when undefined. */
  columns?: TaskColumns | undefined;
}

/**
 * Inserts `item` as task `id` (status PENDING, version 1, created and updated `now`) and its CREATED event by
 * `actor` (its changes: title, type, priority, status, assignee, parentId), unless a task `id` exists already (then
 * that row is returned; checked only for a client id) or the parent does not exist. Outside a transaction, `tx` is
 * the operation's reader: the statement commits alone.
 *
 * Races the statement leaves to its caller, as PostgreSQL reports them: a concurrent insert of the same client id
 * fails this one on the primary key (UniqueConstraintViolationException), and a parent deleted after the statement
 * began fails the foreign key (ForeignKeyConstraintViolationException; the key check locks the parent KEY SHARE
 * until commit, so it cannot be deleted afterwards).
 */
export async function insertTask(
  tx: SqlContext,
  id: string,
  item: NewTask,
  actor: string,
  now: Date,
  options: InsertOptions = {},
): Promise<InsertOutcome> {
  const { title, type, priority, assignee, parentId } = item;
  const changes = { title, type, priority, status: 'PENDING', assignee, parentId };
  const returning = raw(options.columns?.names.join(', ') ?? '*');
  // Instants travel as ISO strings (as in filters.ts), never as driver-formatted local times. Every value is cast:
  // in INSERT ... SELECT the parameters take no type from the target columns.
  const at = now.toISOString();
  const values = sql`${id}::uuid, ${title}::text, ${item.description}::text, ${type}::task_type, ${priority}::task_priority,
             'PENDING'::task_status, ${assignee}::text, ${item.createdBy}::text, ${item.tags}::text[],
             ${JSON.stringify(item.metadata)}::jsonb, ${JSON.stringify(item.context)}::jsonb, ${item.estimatedMinutes}::int,
             ${item.dueAt?.toISOString() ?? null}::timestamptz, ${parentId}::uuid, ${at}::timestamptz, ${at}::timestamptz, 1`;
  const columns = raw(`id, title, description, type, priority, status, assignee, created_by, tags, metadata, context,
                        estimated_minutes, due_at, parent_id, created_at, updated_at, version`);
  const event = sql`event as (
      insert into task_event (task_id, kind, actor, at, changes)
      select created.id, 'CREATED', ${actor}, ${at}::timestamptz, ${JSON.stringify(changes)}::jsonb from created
    )`;
  // The checks a statement needs, and no more: a server-made id cannot exist yet, and without a parent there is
  // nothing to look up (PostgreSQL runs the lean form a third faster: pgbench, 10 clients).
  const guards = [
    ...(options.clientId ? [raw('not exists (select 1 from existing)')] : []),
    ...(parentId !== null ? [sql`exists (select 1 from task p where p.id = ${parentId}::uuid)`] : []),
  ];
  const insert =
    guards.length === 0
      ? sql`insert into task (${columns}) values (${values}) returning ${returning}`
      : sql`insert into task (${columns}) select ${values} where ${join(guards, ' and ')} returning ${returning}`;
  const rows = await query<TaskRow & { created: boolean }>(
    tx,
    options.clientId
      ? sql`with existing as (select ${returning} from task t where t.id = ${id}::uuid), created as (${insert}), ${event}
          select true as created, c.* from created c union all select false as created, e.* from existing e`
      : sql`with created as (${insert}), ${event} select true as created, c.* from created c`,
  );
  const [first] = rows;
  if (!first) return { kind: 'no-parent' };
  const { created, ...row } = first;
  return created ? { kind: 'created', row } : { kind: 'existing', row };
}
