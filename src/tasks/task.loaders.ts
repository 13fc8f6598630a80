/**
 * DataLoaders of one operation, built on that operation's fork: concurrent reads of one kind become one SQL
 * statement for the whole batch (tasks by id, dependencies, dependents, blockers, executions and events by id).
 */
import DataLoader from 'dataloader';
import type { EntityManager } from '@mikro-orm/postgresql';
import { query } from '../db/sql.js';
import { TaskEvent } from './event.entity.js';
import { TaskExecution } from './execution.entity.js';
import { Task } from './task.entity.js';

export interface TaskLoaders {
  /** A task by id, `null` when absent. */
  taskById: DataLoader<string, Task | null>;
  /** The tasks a task waits for. */
  dependenciesOf: DataLoader<string, Task[]>;
  /** The tasks that wait for a task. */
  dependentsOf: DataLoader<string, Task[]>;
  /** Ids of the dependencies of a task that are not COMPLETED (its blockers). */
  blockersOf: DataLoader<string, string[]>;
  executionById: DataLoader<string, TaskExecution | null>;
  eventById: DataLoader<string, TaskEvent | null>;
}

/** Groups rows by a key column, keeping each key's rows in order. */
function groupBy<R>(rows: R[], key: (r: R) => string): Map<string, R[]> {
  const map = new Map<string, R[]>();
  for (const row of rows) {
    const k = key(row);
    const list = map.get(k) ?? [];
    list.push(row);
    map.set(k, list);
  }
  return map;
}

/** Builds fresh loaders for one operation. */
export function createTaskLoaders(em: EntityManager): TaskLoaders {
  const taskById = new DataLoader<string, Task | null>(async (ids) => {
    const rows = await em.find(Task, { id: { $in: [...ids] } });
    const byId = new Map(rows.map((t) => [t.id, t]));
    // DataLoader needs results in key order, null for missing keys.
    return ids.map((id) => byId.get(id) ?? null);
  });

  /** Tasks at the other end of `task_dependency` edges, one statement for the batch. */
  const edges = (from: 'task_id' | 'depends_on_id', to: 'task_id' | 'depends_on_id') =>
    new DataLoader<string, Task[]>(async (ids) => {
      const rows = await query<Record<string, unknown> & { edge_key: string }>(em, {
        text: `select d.${from} as edge_key, t.* from task_dependency d join task t on t.id = d.${to}
                where d.${from} = any(?) order by d.${from}, d.created_at, t.id`,
        params: [[...ids]],
      });
      const grouped = groupBy(rows, (r) => r.edge_key);
      return ids.map((id) =>
        (grouped.get(id) ?? []).map(({ edge_key: _k, ...columns }) => {
          const task = em.map(Task, columns);
          taskById.prime(task.id, task);
          return task;
        }),
      );
    });

  return {
    taskById,
    dependenciesOf: edges('task_id', 'depends_on_id'),
    dependentsOf: edges('depends_on_id', 'task_id'),
    blockersOf: new DataLoader<string, string[]>(async (ids) => {
      const rows = await query<{ task_id: string; blocker: string }>(em, {
        text: `select d.task_id, dep.id as blocker from task_dependency d join task dep on dep.id = d.depends_on_id
                where d.task_id = any(?) and dep.status <> 'COMPLETED' order by d.task_id, dep.id`,
        params: [[...ids]],
      });
      const grouped = groupBy(rows, (r) => r.task_id);
      return ids.map((id) => (grouped.get(id) ?? []).map((r) => r.blocker));
    }),
    executionById: new DataLoader<string, TaskExecution | null>(async (ids) => {
      const rows = await em.find(TaskExecution, { id: { $in: [...ids] } });
      const byId = new Map(rows.map((e) => [e.id, e]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
    eventById: new DataLoader<string, TaskEvent | null>(async (ids) => {
      const rows = await em.find(TaskEvent, { id: { $in: [...ids] } });
      const byId = new Map(rows.map((e) => [String(e.id), e]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
  };
}
