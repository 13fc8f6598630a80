/**
 * DataLoaders of one operation, built on that operation's fork: concurrent reads of tasks by id become one
 * `select ... where id in (...)`.
 */
import DataLoader from 'dataloader';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Task } from './task.entity.js';

export interface TaskLoaders {
  /** A task by id, `null` when absent. */
  taskById: DataLoader<string, Task | null>;
}

/** Builds fresh loaders for one operation. */
export function createTaskLoaders(em: EntityManager): TaskLoaders {
  return {
    taskById: new DataLoader<string, Task | null>(async (ids) => {
      const rows = await em.find(Task, { id: { $in: [...ids] } });
      const byId = new Map(rows.map((t) => [t.id, t]));
      // DataLoader needs results in key order, null for missing keys.
      return ids.map((id) => byId.get(id) ?? null);
    }),
  };
}
