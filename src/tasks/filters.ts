/**
 * `TaskFilter` to a MikroORM filter query. Values are always bound parameters: no SQL is built from client text.
 */
import type { FilterQuery } from '@mikro-orm/core';
import type { Task, TaskPriority, TaskStatus, TaskType } from './task.entity.js';

export type ArchivedFilter = 'EXCLUDE' | 'INCLUDE' | 'ONLY';

/** The GraphQL `TaskFilter` input. */
export interface TaskFilterInput {
  status?: TaskStatus[] | null;
  priority?: TaskPriority[] | null;
  type?: TaskType[] | null;
  assignee?: string[] | null;
  tagsAny?: string[] | null;
  archived?: ArchivedFilter | null;
}

/** Builds the `where` of a task listing. Every condition given must hold. */
export function taskWhere(filter: TaskFilterInput | null | undefined): FilterQuery<Task> {
  const f = filter ?? {};
  const where: Record<string, unknown> = {};
  if (f.status) where.status = { $in: f.status };
  if (f.priority) where.priority = { $in: f.priority };
  if (f.type) where.type = { $in: f.type };
  if (f.assignee) where.assignee = { $in: f.assignee };
  if (f.tagsAny) where.tags = { $overlap: f.tagsAny };
  const archived = f.archived ?? 'EXCLUDE';
  if (archived === 'EXCLUDE') where.archivedAt = null;
  else if (archived === 'ONLY') where.archivedAt = { $ne: null };
  return where;
}
