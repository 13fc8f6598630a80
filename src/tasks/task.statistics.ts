/**
 * `Query.taskStatistics`: grouped counts of the tasks matching a filter, computed by PostgreSQL in one
 * statement (grouping sets), never by loading rows.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { TASK_PRIORITIES, TASK_STATUSES, TASK_TYPES, type TaskPriority, type TaskStatus, type TaskType } from './task.entity.js';
import { taskCondition, type TaskFilterInput } from './task.filters.js';
import { TaskRepository, type GroupRow } from './task.repository.js';

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

/**
 * Counts the tasks matching `filter` (archived hidden unless it says otherwise), per status, priority, type and
 * assignee, with the overdue and blocked ones. Every status, priority and type is listed, zeros included;
 * assignees come by count descending, then by name, the unassigned (null) after named ones of equal count.
 */
export async function taskStatistics(em: EntityManager, filter: TaskFilterInput | null | undefined): Promise<TaskStatistics> {
  const rows = await new TaskRepository(em).statistics(taskCondition(em, filter));
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
