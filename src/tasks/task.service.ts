/**
 * The task service: rules and transactions. One instance per operation, on that operation's reader (no fork).
 * Every mutation is atomic: one transaction, or for `createTask` one statement (atomic on its own); resolvers only
 * translate arguments and results.
 */
import { randomUUID } from 'node:crypto';
import { ForeignKeyConstraintViolationException, UniqueConstraintViolationException } from '@mikro-orm/core';
import type { TransactionRunner } from '../db/transaction.js';
import { query, sql, toSql, type OperationReader, type SqlContext } from '../db/sql.js';
import { AppError } from '../errors.js';
import { taskRecordMapper, type TaskRecord, type TaskRow } from './task.record.js';
import { insertTask } from './task.insert.js';
import type { TaskColumns } from './task.columns.js';
import { snapshot } from './events.js';
import { changeTask, lockTask, lockTasksWhere } from './task.writes.js';
import { parseId, validateCreate, validateUpdate, type CreateTaskInput, type TaskChanges, type UpdateTaskInput } from './task.validation.js';

/** The most tasks `createTasks` and `updateTasks` take at once. */
export const MAX_BATCH = 100;

/** Parent changes take this transaction-level advisory lock so two of them cannot close a loop together. */
const HIERARCHY_LOCK_KEY = 7_264_911_002;


export class TaskService {
  constructor(
    private readonly db: OperationReader,
    private readonly actor: string,
    private readonly transactions: TransactionRunner,
    /** With authentication on, `createdBy` is the caller, whatever the input says. */
    private readonly actorIsAuthenticated = false,
    /** The task columns the operation reads (task.columns.ts): what a created task is returned with. */
    private readonly columns: () => TaskColumns | undefined = () => undefined,
  ) {}

  /**
   * Creates a task. With a client-supplied id that exists already, returns the existing task unchanged; when
   * several such calls race, the losers' inserts fail on the primary key and they return the winner's row.
   */
  async create(input: CreateTaskInput): Promise<TaskRecord> {
    const item = validateCreate(input);
    if (this.actorIsAuthenticated) item.createdBy = this.actor;
    if (item.id && item.id === item.parentId) throw new AppError('CYCLE_DETECTED', 'A task cannot be its own parent', { field: 'parentId' });
    const toRecord = taskRecordMapper(this.db.getPlatform());
    // Not the unit of work and no transaction: one statement checks, inserts and records the event (task.insert.ts).
    // Behind PgBouncer it therefore runs under the role's default statement_timeout, like every read (docs/scaling.md, PgBouncer).
    const run = async (): Promise<TaskRecord> => {
      try {
        const outcome = await insertTask(this.db, item.id ?? randomUUID(), item, this.actor, new Date(), {
          clientId: item.id !== undefined,
          columns: this.columns(),
        });
        if (outcome.kind === 'no-parent') throw parentNotFound(item.parentId);
        return toRecord(outcome.row);
      } catch (err) {
        // The parent was deleted between the statement's start and its foreign-key check.
        if (err instanceof ForeignKeyConstraintViolationException && item.parentId) throw parentNotFound(item.parentId);
        throw err;
      }
    };
    try {
      return await run();
    } catch (err) {
      // A concurrent create took the client-supplied id first: run again, now finding it (a safe retry: the failed
      // statement committed nothing).
      if (clientIdsRaced(err, [item])) return run();
      throw err;
    }
  }

  /**
   * Creates up to 100 tasks in one transaction, all or none. Each input follows `create`'s rules; a parent may be
   * another task of the same batch. An error names the input's `index`.
   */
  async createMany(inputs: readonly CreateTaskInput[], batch = true): Promise<TaskRecord[]> {
    if (inputs.length > MAX_BATCH) throw AppError.badInput(`at most ${MAX_BATCH} tasks per batch (got ${inputs.length})`, 'inputs');
    const items = inputs.map((input, index) =>
      withIndex(batch, index, () => {
        const item = validateCreate(input);
        return this.actorIsAuthenticated ? { ...item, createdBy: this.actor } : item;
      }),
    );
    items.forEach((item, index) =>
      withIndex(batch, index, () => {
        if (item.id && item.id === item.parentId) throw new AppError('CYCLE_DETECTED', 'A task cannot be its own parent', { field: 'parentId' });
      }),
    );
    const toRecord = taskRecordMapper(this.db.getPlatform());
    const run = () =>
      this.transactions.run(this.db, async (tx) => {
        const clientIds = items.flatMap((i) => (i.id ? [i.id] : []));
        const existing = clientIds.length ? await query<TaskRow>(tx, sql`select t.* from task t where t.id = any(${clientIds}::uuid[])`) : [];
        const known = new Set(existing.map((t) => t.id));
        const newIds = items.map((i) => i.id ?? randomUUID());
        const batchIds = new Set(newIds);
        const parentIds = [...new Set(items.flatMap((i) => (i.parentId && !batchIds.has(i.parentId) && !known.has(i.parentId) ? [i.parentId] : [])))];
        if (parentIds.length) {
          const found = new Set((await query<{ id: string }>(tx, sql`select id from task where id = any(${parentIds}::uuid[])`)).map((t) => t.id));
          items.forEach((item, index) =>
            withIndex(batch, index, () => {
              if (item.parentId && parentIds.includes(item.parentId) && !found.has(item.parentId)) {
                throw new AppError('NOT_FOUND', `Parent task ${item.parentId} does not exist`, { field: 'parentId', id: item.parentId });
              }
            }),
          );
        }
        const now = new Date();
        // A parent from the same batch must be inserted first: tasks go in by depth. Each insert is task.insert.ts's
        // statement (the row and its CREATED event; a client id that exists returns that task unchanged).
        const depths = batchDepths(items, newIds, batch);
        const tasks: TaskRecord[] = new Array<TaskRecord>(items.length);
        for (let depth = 0; depth <= Math.max(0, ...depths); depth++) {
          for (const [index, item] of items.entries()) {
            if (depths[index] !== depth) continue;
            const outcome = await insertTask(tx, newIds[index] as string, item, this.actor, now, { clientId: item.id !== undefined, columns: this.columns() });
            if (outcome.kind === 'no-parent') withIndex(batch, index, () => { throw parentNotFound(item.parentId); });
            else tasks[index] = toRecord(outcome.row);
          }
        }
        return tasks;
      });
    try {
      return await run();
    } catch (err) {
      // A concurrent create took one of the client-supplied ids first: run again, now finding it (a safe retry).
      if (clientIdsRaced(err, items)) return run();
      throw err;
    }
  }

  /**
   * Applies `input` to a task. The row is locked for the transaction, so of N concurrent updates with the same
   * `expectedVersion` exactly one wins; the others see the new version and get VERSION_CONFLICT.
   * A change that changes nothing keeps the version.
   */
  async update(id: string, input: UpdateTaskInput, expectedVersion?: number | null): Promise<TaskRecord> {
    const taskId = parseId(id);
    const changes = validateUpdate(input);
    return this.transactions.run(this.db, async (tx) => {
      if (changes.parentId !== undefined) await query(tx, toSql('select pg_advisory_xact_lock(?)', [HIERARCHY_LOCK_KEY]));
      const task = await lockTask(tx, taskId, expectedVersion);
      return this.applyUpdate(tx, task, changes);
    });
  }

  /** Applies one change to up to 100 tasks in one transaction, all or none; returns them in the order of `ids`. */
  async updateMany(ids: readonly string[], input: UpdateTaskInput): Promise<TaskRecord[]> {
    if (ids.length > MAX_BATCH) throw AppError.badInput(`at most ${MAX_BATCH} tasks per batch (got ${ids.length})`, 'ids');
    const taskIds = ids.map((id) => parseId(id, 'ids'));
    const changes = validateUpdate(input);
    return this.transactions.run(this.db, async (tx) => {
      if (changes.parentId !== undefined) await query(tx, toSql('select pg_advisory_xact_lock(?)', [HIERARCHY_LOCK_KEY]));
      // Locked in id order, so two batches over overlapping tasks queue up instead of deadlocking.
      const tasks = await lockTasksWhere(tx, sql`t.id = any(${[...new Set(taskIds)]}::uuid[])`);
      const byId = new Map(tasks.map((t) => [t.id, t]));
      const missing = taskIds.find((id) => !byId.has(id));
      if (missing) throw new AppError('NOT_FOUND', `Task ${missing} does not exist`, { id: missing, field: 'ids' });
      for (const task of tasks) byId.set(task.id, await this.applyUpdate(tx, task, changes));
      return taskIds.map((id) => byId.get(id) as TaskRecord);
    });
  }

  /**
   * Checks a parent change for loops, then applies `changes` with their event (nothing when nothing changes);
   * returns the task as stored afterwards.
   */
  private async applyUpdate(tx: SqlContext, task: TaskRecord, changes: TaskChanges): Promise<TaskRecord> {
    if (changes.parentId != null && changes.parentId !== task.parent?.id) await this.assertNoLoop(tx, task.id, changes.parentId);
    return (await changeTask(tx, task, 'UPDATED', this.actor, (draft) => applyChanges(draft, changes))).task;
  }

  /** Refuses a parent that is the task itself or one of its descendants. */
  private async assertNoLoop(tx: SqlContext, taskId: string, parentId: string): Promise<void> {
    if (parentId === taskId) throw new AppError('CYCLE_DETECTED', 'A task cannot be its own parent', { field: 'parentId' });
    const rows = await query<{ id: string }>(tx, toSql(`with recursive chain(id, parent_id) as (
         select id, parent_id from task where id = ?
         union
         select t.id, t.parent_id from task t join chain c on t.id = c.parent_id
       )
       select id from chain`,
      [parentId],
    ));
    if (rows.length === 0) throw new AppError('NOT_FOUND', `Parent task ${parentId} does not exist`, { field: 'parentId', id: parentId });
    if (rows.some((r) => r.id === taskId)) {
      throw new AppError('CYCLE_DETECTED', `Making ${parentId} the parent of ${taskId} would close a loop`, { field: 'parentId' });
    }
  }
}

/** Runs a per-item check of a batch; an AppError it throws names the item's index. */
function withIndex<T>(batch: boolean, index: number, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (batch && err instanceof AppError) err.extensions.index = index;
    throw err;
  }
}

/** How deep each item sits below a parent of the same batch (0: its parent, if any, exists already). */
function batchDepths(items: ReadonlyArray<{ parentId: string | null }>, ids: readonly string[], batch: boolean): number[] {
  const depths = new Array<number>(items.length).fill(-1);
  const depthOf = (index: number, path: Set<number>): number => {
    if (depths[index]! >= 0) return depths[index]!;
    const parentId = items[index]!.parentId;
    const parent = parentId ? ids.indexOf(parentId) : -1;
    if (parent >= 0 && path.has(parent)) {
      withIndex(batch, index, () => {
        throw new AppError('CYCLE_DETECTED', 'The parents of this batch form a loop', { field: 'parentId' });
      });
    }
    const depth = parent >= 0 && parent !== index ? depthOf(parent, new Set([...path, parent])) + 1 : 0;
    depths[index] = depth;
    return depth;
  };
  items.forEach((_, index) => depthOf(index, new Set([index])));
  return depths;
}

function parentNotFound(parentId: string | null): AppError {
  return new AppError('NOT_FOUND', `Parent task ${parentId} does not exist`, { field: 'parentId', id: parentId });
}

function clientIdsRaced(err: unknown, items: ReadonlyArray<{ id: string | undefined }>): boolean {
  return err instanceof UniqueConstraintViolationException && items.some((i) => i.id !== undefined);
}

/** Copies the fields that differ onto the task's draft (task.writes.ts compares it with the task to find the event's changes). */
export function applyChanges(task: TaskRecord, changes: TaskChanges): void {
  const { parentId, ...fields } = changes;
  const before = snapshot(task);
  for (const [key, value] of Object.entries(fields) as Array<[keyof typeof fields, unknown]>) {
    const current = before[key];
    const next = value instanceof Date ? value.toISOString() : (value ?? null);
    if (JSON.stringify(current) !== JSON.stringify(next)) (task as unknown as Record<string, unknown>)[key] = value;
  }
  if (parentId !== undefined && (task.parent?.id ?? null) !== parentId) task.parent = parentId ? { id: parentId } : null;
}
