/**
 * DataLoaders of one operation, on that operation's fork: concurrent reads of one kind become one statement for the
 * whole batch (tasks by id, dependencies, dependents, executions and events by id).
 *
 * Tasks are read as plain {@link TaskView}s (the ORM's query builder and its result mapper, no hydration): a read
 * needs no identity map or change tracking, and managing every row of a page cost more than the rest of the page.
 */
import DataLoader from 'dataloader';
import type { EntityManager } from '@mikro-orm/postgresql';
import { TaskEvent } from '../events/event.entity.js';
import { TaskExecution } from './execution.entity.js';
import type { TaskView } from './task.entity.js';
import type { TaskColumns } from './task.model.js';
import { TaskRepository } from './task.repository.js';

export interface TaskLoaders {
  /** A task by id, `null` when absent. */
  taskById: DataLoader<string, TaskView | null>;
  /** The tasks a task waits for. */
  dependenciesOf: DataLoader<string, TaskView[]>;
  /** The tasks that wait for a task. */
  dependentsOf: DataLoader<string, TaskView[]>;
  /**
   * Ids of the dependencies of a task that are not COMPLETED (its blockers), in id order. Read from the same
   * statement as `dependenciesOf`: a page asking for `dependencies` and `isBlocked` costs one statement, not two.
   */
  blockersOf(taskId: string): Promise<string[]>;
  /**
   * What this operation has already read, without waiting: a task by id (`null`: known not to exist), a task's
   * dependencies, its blockers; `undefined` when not read yet. A resolver that can answer from these returns a
   * value instead of a promise, and graphql-js then completes the object without a promise per field.
   */
  peekTask(id: string): TaskView | null | undefined;
  peekDependencies(taskId: string): TaskView[] | undefined;
  peekBlockers(taskId: string): string[] | undefined;
  /** Tasks read elsewhere (a listing), each primed into `taskById` so a later read by id of it costs nothing. */
  records(tasks: readonly TaskView[]): TaskView[];
  /** A task's dependencies read along with it (in `dependenciesOf` order), primed like {@link records}. */
  primeDependencies(taskId: string, tasks: readonly TaskView[]): void;
  executionById: DataLoader<string, TaskExecution | null>;
  eventById: DataLoader<string, TaskEvent | null>;
  /**
   * Forgets everything cached. A mutation changes rows these loaders may hold (plain views, not one shared managed
   * instance per task), so every read after it must go to the database again.
   */
  clearAll(): void;
}

/** The blockers among a task's dependencies: those not COMPLETED, by id. */
function blockersAmong(dependencies: readonly TaskView[]): string[] {
  return dependencies
    .filter((d) => d.status !== 'COMPLETED')
    .map((d) => d.id)
    .sort();
}

/**
 * Builds fresh loaders for one operation.
 *
 * @param em the operation's fork.
 * @param columns the task columns the operation needs; undefined: every column.
 */
export function createTaskLoaders(em: EntityManager, columns: () => TaskColumns | undefined = () => undefined): TaskLoaders {
  const repository = new TaskRepository(em);
  const knownTasks = new Map<string, TaskView | null>();
  const knownDependencies = new Map<string, TaskView[]>();

  const taskById = new DataLoader<string, TaskView | null>(async (ids) => {
    const byId = new Map((await repository.byIds(ids, columns())).map((t) => [t.id, t]));
    // DataLoader needs results in key order, null for missing keys.
    return ids.map((id) => {
      const task = byId.get(id) ?? null;
      knownTasks.set(id, task);
      return task;
    });
  });

  const records = (tasks: readonly TaskView[]): TaskView[] => {
    for (const task of tasks) {
      // Like prime(), which keeps what the loader already holds: both answer alike for the whole operation.
      taskById.prime(task.id, task);
      if (!knownTasks.has(task.id)) knownTasks.set(task.id, task);
    }
    return [...tasks];
  };

  const edges = (direction: 'dependencies' | 'dependents') =>
    new DataLoader<string, TaskView[]>(async (ids) => {
      const grouped = new Map<string, TaskView[]>();
      for (const { key, task } of await repository.across(direction, ids, columns())) {
        const list = grouped.get(key);
        if (list) list.push(task);
        else grouped.set(key, [task]);
      }
      return ids.map((id) => {
        const tasks = records(grouped.get(id) ?? []);
        if (direction === 'dependencies') knownDependencies.set(id, tasks);
        return tasks;
      });
    });
  const dependenciesOf = edges('dependencies');
  const dependentsOf = edges('dependents');

  const executionById = new DataLoader<string, TaskExecution | null>(async (ids) => {
    const rows = await em.find(TaskExecution, { id: { $in: [...ids] } });
    const byId = new Map(rows.map((e) => [e.id, e]));
    return ids.map((id) => byId.get(id) ?? null);
  });
  const eventById = new DataLoader<string, TaskEvent | null>(async (ids) => {
    const rows = await em.find(TaskEvent, { id: { $in: [...ids] } });
    const byId = new Map(rows.map((e) => [String(e.id), e]));
    return ids.map((id) => byId.get(id) ?? null);
  });

  return {
    taskById,
    dependenciesOf,
    dependentsOf,
    records,
    primeDependencies(taskId, tasks) {
      if (knownDependencies.has(taskId)) return;
      const primed = records(tasks);
      dependenciesOf.prime(taskId, primed);
      knownDependencies.set(taskId, primed);
    },
    async blockersOf(taskId) {
      return blockersAmong(await dependenciesOf.load(taskId));
    },
    peekTask: (id) => knownTasks.get(id),
    peekDependencies: (taskId) => knownDependencies.get(taskId),
    peekBlockers(taskId) {
      const dependencies = knownDependencies.get(taskId);
      return dependencies && blockersAmong(dependencies);
    },
    executionById,
    eventById,
    clearAll() {
      for (const loader of [taskById, dependenciesOf, dependentsOf, executionById, eventById]) loader.clearAll();
      knownTasks.clear();
      knownDependencies.clear();
      // Entities read before the mutation (executions, events) must not answer for what it changed.
      em.clear();
    },
  };
}
