/**
 * DataLoaders of one operation, built on that operation's reader (executions and events by id on its fork):
 * concurrent reads of one kind become one SQL statement for the whole batch (tasks by id, dependencies, dependents,
 * executions and events by id).
 *
 * Tasks are read as plain {@link TaskRecord}s straight from hand-written SQL, not as managed entities: a read
 * needs no identity map, and building one cost more than the rest of a page of tasks together (see task.record.ts).
 */
import DataLoader from 'dataloader';
import type { EntityManager } from '@mikro-orm/postgresql';
import { query, type SqlContext } from '../db/sql.js';
import { TaskEvent } from './event.entity.js';
import { TaskExecution } from './execution.entity.js';
import { taskRecordMapper, type TaskRecord, type TaskRow } from './task.record.js';
import type { TaskColumns } from './task.columns.js';

export interface TaskLoaders {
  /** A task by id, `null` when absent. */
  taskById: DataLoader<string, TaskRecord | null>;
  /** The tasks a task waits for. */
  dependenciesOf: DataLoader<string, TaskRecord[]>;
  /** The tasks that wait for a task. */
  dependentsOf: DataLoader<string, TaskRecord[]>;
  /**
   * Ids of the dependencies of a task that are not COMPLETED (its blockers), in id order. Read from the same
   * statement as `dependenciesOf`: a page asking for `dependencies` and `isBlocked` costs one statement, not two.
   */
  blockersOf(taskId: string): Promise<string[]>;
  /**
   * What this operation has already read, without waiting: a task by id (`null`: known not to exist), a task's
   * dependencies, its blockers; `undefined` when not read yet. A resolver that can answer from these returns a
   * value instead of a promise, and graphql-js then completes the object without a promise per field: for a page
   * whose related tasks were fetched up front (task.listing.ts), most of the CPU of executing it.
   */
  peekTask(id: string): TaskRecord | null | undefined;
  peekDependencies(taskId: string): TaskRecord[] | undefined;
  peekBlockers(taskId: string): string[] | undefined;
  /** `task` rows to records, each primed into `taskById` so a later read by id of the same task costs nothing. */
  records(rows: readonly TaskRow[]): TaskRecord[];
  /** A task's dependencies read along with it (in `dependenciesOf` order), primed like {@link records}. */
  primeDependencies(taskId: string, rows: readonly TaskRow[]): void;
  executionById: DataLoader<string, TaskExecution | null>;
  eventById: DataLoader<string, TaskEvent | null>;
  /**
   * Forgets everything cached. A mutation changes rows these loaders may hold (they are plain records, not one
   * shared managed instance per task), so every read after it must go to the database again.
   */
  clearAll(): void;
}

/** Groups rows by a key column, keeping each key's rows in order. */
function groupBy<R>(rows: R[], key: (r: R) => string): Map<string, R[]> {
  const map = new Map<string, R[]>();
  for (const row of rows) {
    const k = key(row);
    const list = map.get(k);
    if (list) list.push(row);
    else map.set(k, [row]);
  }
  return map;
}

/** The blockers among a task's dependencies: those not COMPLETED, by id. */
function blockersAmong(dependencies: readonly TaskRecord[]): string[] {
  return dependencies
    .filter((d) => d.status !== 'COMPLETED')
    .map((d) => d.id)
    .sort();
}

/**
 * Builds fresh loaders for one operation.
 *
 * @param db runs the task reads (the operation's reader: no fork needed).
 * @param em the operation's fork, asked for only by the loaders that map rows to entities (executions, events).
 * @param columns the task columns the operation needs (task.columns.ts); undefined: every column.
 */
export function createTaskLoaders(db: SqlContext, em: () => EntityManager, columns: () => TaskColumns | undefined = () => undefined): TaskLoaders {
  const select = (alias: string) => columns()?.select(alias) ?? `${alias}.*`;
  const toRecord = taskRecordMapper(db.getPlatform());
  const knownTasks = new Map<string, TaskRecord | null>();
  const knownDependencies = new Map<string, TaskRecord[]>();

  // One `= any(?)` statement with the ids as a single array parameter: the same text for any batch size.
  const taskById = new DataLoader<string, TaskRecord | null>(async (ids) => {
    const rows = await query<TaskRow>(db, { text: `select ${select('t')} from task t where t.id = any(?)`, params: [[...ids]] });
    const byId = new Map(rows.map((r) => [r.id, toRecord(r)]));
    // DataLoader needs results in key order, null for missing keys.
    return ids.map((id) => {
      const task = byId.get(id) ?? null;
      knownTasks.set(id, task);
      return task;
    });
  });

  const records = (rows: readonly TaskRow[]): TaskRecord[] =>
    rows.map((row) => {
      const task = toRecord(row);
      // Like prime(), which keeps what the loader already holds: both answer alike for the whole operation.
      taskById.prime(task.id, task);
      if (!knownTasks.has(task.id)) knownTasks.set(task.id, task);
      return task;
    });

  /** Tasks at the other end of `task_dependency` edges, one statement for the batch. */
  const edges = (from: 'task_id' | 'depends_on_id', to: 'task_id' | 'depends_on_id') =>
    new DataLoader<string, TaskRecord[]>(async (ids) => {
      const rows = await query<TaskRow & { edge_key: string }>(db, {
        text: `select d.${from} as edge_key, ${select('t')} from task_dependency d join task t on t.id = d.${to}
                where d.${from} = any(?) order by d.${from}, d.created_at, t.id`,
        params: [[...ids]],
      });
      const grouped = groupBy(rows, (r) => r.edge_key);
      return ids.map((id) => {
        const tasks = records(grouped.get(id) ?? []);
        if (from === 'task_id') knownDependencies.set(id, tasks);
        return tasks;
      });
    });
  const dependenciesOf = edges('task_id', 'depends_on_id');

  const dependentsOf = edges('depends_on_id', 'task_id');
  const executionById = new DataLoader<string, TaskExecution | null>(async (ids) => {
    const rows = await em().find(TaskExecution, { id: { $in: [...ids] } });
    const byId = new Map(rows.map((e) => [e.id, e]));
    return ids.map((id) => byId.get(id) ?? null);
  });
  const eventById = new DataLoader<string, TaskEvent | null>(async (ids) => {
    const rows = await em().find(TaskEvent, { id: { $in: [...ids] } });
    const byId = new Map(rows.map((e) => [String(e.id), e]));
    return ids.map((id) => byId.get(id) ?? null);
  });

  return {
    taskById,
    dependenciesOf,
    dependentsOf,
    records,
    primeDependencies(taskId, rows) {
      if (knownDependencies.has(taskId)) return;
      const tasks = records(rows);
      dependenciesOf.prime(taskId, tasks);
      knownDependencies.set(taskId, tasks);
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
    },
  };
}
