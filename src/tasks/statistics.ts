/**
 * `Query.taskStatistics`: grouped counts of the tasks matching a filter, computed by PostgreSQL in one
 * statement (grouping sets), never by loading rows.
 */
import { query, type SqlContext } from '../db/sql.js';
import { TASK_PRIORITIES, TASK_STATUSES, TASK_TYPES, type TaskPriority, type TaskStatus, type TaskType } from './task.entity.js';
import { IS_BLOCKED_SQL, taskCondition, type TaskFilterInput } from './filters.js';

/** The `TaskStatistics` object of the schema. */
export interface TaskStatistics {
  total: number;
  byStatus: Array<{ status: TaskStatus; count: number }>;
  byPriority: Array<{ priority: TaskPriority; count: number }>;
  byType: Array<{ type: TaskType; count: number }>;
  byAssignee: Array<{ assignee: string | null; count: number }>;
  overdue: number;
  blocked: number;
}

/** The GraphQL enum's order (CRITICAL first), which is the reverse of the database enum's rank order. */
const PRIORITIES_AS_LISTED: readonly TaskPriority[] = [...TASK_PRIORITIES].reverse();

/** One row per group; `grp` names the grouping set it belongs to. */
interface GroupRow {
  grp: 'status' | 'priority' | 'type' | 'assignee' | 'all';
  status: TaskStatus | null;
  priority: TaskPriority | null;
  type: TaskType | null;
  assignee: string | null;
  n: number;
  overdue: number;
  blocked: number;
}

/**
 * Counts the tasks matching `filter` (archived hidden unless it says otherwise), per status, priority, type and
 * assignee, with the overdue and blocked ones. Every status, priority and type is listed, zeros included;
 * assignees come by count descending, then by name, the unassigned (null) after named ones of equal count.
 */
export async function taskStatistics(db: SqlContext, filter: TaskFilterInput | null | undefined): Promise<TaskStatistics> {
  const where = taskCondition(filter);
  // The row flags (overdue, blocked) are computed once per row, below the grouping. grouping() sets a bit for each
  // column a set does not group by, the first argument being the high bit: 7 = grouped by status alone, and so on.
  const rows = await query<GroupRow>(db, {
    text: `with m as (
       select t.status, t.priority, t.type, t.assignee,
              (t.due_at < now() and t.status not in ('COMPLETED', 'CANCELLED')) as overdue,
              ${IS_BLOCKED_SQL} as blocked
       from task t where ${where.text}
     )
     select case grouping(status, priority, type, assignee)
              when 7 then 'status' when 11 then 'priority' when 13 then 'type' when 14 then 'assignee' else 'all' end as grp,
            status, priority, type, assignee, count(*)::int as n,
            (count(*) filter (where overdue))::int as overdue, (count(*) filter (where blocked))::int as blocked
     from m
     group by grouping sets ((status), (priority), (type), (assignee), ())
     order by grp, n desc, assignee asc nulls last`,
    params: where.params,
  });
  const of = (grp: GroupRow['grp']) => rows.filter((r) => r.grp === grp);
  const countBy = <K extends 'status' | 'priority' | 'type'>(set: K) => new Map(of(set).map((r) => [r[set], r.n]));
  const statuses = countBy('status');
  const priorities = countBy('priority');
  const types = countBy('type');
  // The empty grouping set yields its row even when no task matches.
  const all = of('all')[0];
  return {
    total: all?.n ?? 0,
    byStatus: TASK_STATUSES.map((status) => ({ status, count: statuses.get(status) ?? 0 })),
    byPriority: PRIORITIES_AS_LISTED.map((priority) => ({ priority, count: priorities.get(priority) ?? 0 })),
    byType: TASK_TYPES.map((type) => ({ type, count: types.get(type) ?? 0 })),
    byAssignee: of('assignee').map((r) => ({ assignee: r.assignee, count: r.n })),
    overdue: all?.overdue ?? 0,
    blocked: all?.blocked ?? 0,
  };
}
