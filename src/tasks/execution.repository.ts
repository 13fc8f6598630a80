/** Reading executions: each task's own runs, batched for a whole page of tasks. */
import type DataLoader from 'dataloader';
import type { EntityManager } from '@mikro-orm/postgresql';
import { perTaskLoader, type TaskPageArgs } from '../db/per-task-pages.js';
import type { Page } from '../pagination.js';
import { TaskExecution } from './execution.entity.js';

/** Loader of each task's executions page (oldest first) for one set of page arguments. */
export function taskExecutionsLoader(em: EntityManager, args: TaskPageArgs): DataLoader<string, Page<TaskExecution>> {
  return perTaskLoader(
    em,
    {
      table: 'task_execution',
      entity: TaskExecution,
      keys: [
        { column: 'started_at', cast: 'timestamptz', of: (e) => e.startedAt.toISOString() },
        { column: 'id', cast: 'uuid', of: (e) => e.id },
      ],
    },
    args,
  );
}
