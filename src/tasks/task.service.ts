/**
 * The task service: creating and changing tasks. One instance per operation, on the operation's fork; every
 * mutation is one `em.transactional` (TransactionRunner): entities loaded and locked on it, changed, their events
 * persisted, all flushed before COMMIT. Resolvers only translate arguments and results.
 */
import { randomUUID } from 'node:crypto';
import { ForeignKeyConstraintViolationException, LockMode, UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { TransactionRunner } from '../db/transaction.js';
import { AppError } from '../errors.js';
import { Task, type TaskView } from './task.entity.js';
import { recordChange, recordEvent } from './task.changes.js';
import { TaskRepository } from './task.repository.js';
import { taskModel, type TaskColumns } from './task.model.js';
import { parseId, validateCreate, validateUpdate, type CreateTaskInput, type NewTask, type TaskChanges, type UpdateTaskInput } from './task.validation.js';

/** The most tasks `createTasks` and `updateTasks` take at once. */
export const MAX_BATCH = 100;

/**
 * Locks task `id` FOR UPDATE on the transaction (concurrent changes to it queue up). NOT_FOUND if absent,
 * VERSION_CONFLICT if `expectedVersion` is given and stale.
 */
export async function lockTask(tx: EntityManager, id: string, expectedVersion?: number | null): Promise<Task> {
  const task = await new TaskRepository(tx).lock(id);
  if (!task) throw AppError.notFound('Task', id);
  if (expectedVersion != null && task.version !== expectedVersion) throw AppError.versionConflict(id, expectedVersion, task.version);
  return task;
}

export class TaskService {
  constructor(
    private readonly em: EntityManager,
    private readonly actor: string,
    private readonly transactions: TransactionRunner,
    /** With authentication on, `createdBy` is the caller, whatever the input says. */
    private readonly actorIsAuthenticated = false,
    /** The task columns the operation reads (undefined: every column): what a created task is returned with. */
    private readonly columns: () => TaskColumns | undefined = () => undefined,
  ) {}

  /**
   * Creates a task with its CREATED event in one statement (TaskRepository.insertWithEvent, the one write outside
   * the unit of work: bench/README.md, "Ninth round"). With a client-supplied id that exists already, returns the
   * existing task unchanged; when several such calls race, the losers wait for the winner's insert and return its
   * task.
   */
  async create(input: CreateTaskInput): Promise<TaskView> {
    const item = validateCreate(input);
    if (this.actorIsAuthenticated) item.createdBy = this.actor;
    if (item.id && item.id === item.parentId) throw new AppError('CYCLE_DETECTED', 'A task cannot be its own parent', { field: 'parentId' });
    const { id: clientId, parentId, ...fields } = item;
    const id = clientId ?? randomUUID();
    const repository = new TaskRepository(this.em);
    const columns = this.columns();
    for (let attempt = 0; ; attempt++) {
      const now = new Date();
      const { title, type, priority, assignee } = item;
      const created = await this.parentMustExist([item], false, () =>
        repository.insertWithEvent(
          { ...fields, id, parent: parentId, status: 'PENDING', version: 1, createdAt: now, updatedAt: now },
          { taskId: id, kind: 'CREATED', actor: this.actor, at: now, changes: { title, type, priority, status: 'PENDING', assignee, parentId } },
          clientId !== undefined,
          columns,
        ),
      );
      if (created) return created;
      // The client id exists: that task, unchanged (unless it was deleted in between: then create it after all).
      const [existing] = await repository.byIds([id], columns);
      if (existing || attempt > 0) {
        if (!existing) throw AppError.notFound('Task', id);
        return existing;
      }
    }
  }

  /**
   * Creates up to 100 tasks in one transaction, all or none. Each input follows `create`'s rules; a parent may be
   * another task of the same batch. An error names the input's `index`.
   */
  async createMany(inputs: readonly CreateTaskInput[]): Promise<Task[]> {
    const batch = true;
    if (inputs.length > MAX_BATCH) throw AppError.badInput(`at most ${MAX_BATCH} tasks per batch (got ${inputs.length})`, 'inputs');
    const items = inputs.map((input, index) =>
      withIndex(batch, index, () => {
        const item = validateCreate(input);
        if (this.actorIsAuthenticated) item.createdBy = this.actor;
        if (item.id && item.id === item.parentId) throw new AppError('CYCLE_DETECTED', 'A task cannot be its own parent', { field: 'parentId' });
        return item;
      }),
    );
    const ids = items.map((i) => i.id ?? randomUUID());
    const depths = batchDepths(items, ids, batch);
    const run = () =>
      this.transactions.run(this.em, async (tx) => {
        // A client id that exists already returns that task unchanged (a retried create).
        const clientIds = items.flatMap((i) => (i.id ? [i.id] : []));
        const existing = new Map(clientIds.length ? (await tx.find(Task, { id: { $in: clientIds } })).map((t) => [t.id, t]) : []);
        const created: Task[] = new Array<Task>(items.length);
        const now = new Date();
        // A parent from the same batch is flushed first: tasks go in by depth, so each row is inserted with its
        // parent and version 1 (the ORM would otherwise insert both and then UPDATE the child's parent).
        for (let depth = 0; depth <= Math.max(0, ...depths); depth++) {
          for (const [index, item] of items.entries()) {
            if (depths[index] !== depth) continue;
            const id = ids[index] as string;
            created[index] = existing.get(id) ?? this.insert(tx, id, item, now);
          }
          await tx.flush();
        }
        return created;
      });
    try {
      return await this.parentMustExist(items, batch, run);
    } catch (err) {
      // A concurrent create took a client-supplied id first: run again, now finding it (a safe retry: the failed
      // transaction committed nothing).
      if (err instanceof UniqueConstraintViolationException && items.some((i) => i.id !== undefined)) return this.parentMustExist(items, batch, run);
      throw err;
    }
  }

  /** A new task with its CREATED event, persisted on `tx`. */
  private insert(tx: EntityManager, id: string, item: NewTask, now: Date): Task {
    const { id: _clientId, parentId, ...fields } = item;
    const task = tx.create(Task, { ...fields, id, parent: parentId ? tx.getReference(Task, parentId) : null, createdAt: now, updatedAt: now });
    const { title, type, priority, assignee } = item;
    recordEvent(tx, id, 'CREATED', this.actor, { title, type, priority, status: 'PENDING', assignee, parentId }, now);
    return task;
  }

  /** Runs `run`; a parent that does not exist (the foreign key refused it) is NOT_FOUND naming the parent. */
  private async parentMustExist<T>(items: readonly NewTask[], batch: boolean, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (!(err instanceof ForeignKeyConstraintViolationException)) throw err;
      const parents = [...new Set(items.flatMap((i) => (i.parentId ? [i.parentId] : [])))];
      const found = new Set((await new TaskRepository(this.em).byIds(parents)).map((t) => t.id));
      items.forEach((item, index) =>
        withIndex(batch, index, () => {
          if (item.parentId && !found.has(item.parentId)) throw parentNotFound(item.parentId);
        }),
      );
      throw err;
    }
  }

  /**
   * Applies `input` to a task. The row is locked for the transaction, so of N concurrent updates with the same
   * `expectedVersion` exactly one wins; the others see the new version and get VERSION_CONFLICT.
   * A change that changes nothing keeps the version.
   */
  async update(id: string, input: UpdateTaskInput, expectedVersion?: number | null): Promise<Task> {
    const taskId = parseId(id);
    const changes = validateUpdate(input, taskModel(this.em));
    return this.transactions.run(this.em, async (tx) => {
      const repository = new TaskRepository(tx);
      if (changes.parentId !== undefined) await repository.lockHierarchy();
      const task = await lockTask(tx, taskId, expectedVersion);
      await this.applyUpdate(tx, repository, task, changes);
      return task;
    });
  }

  /** Applies one change to up to 100 tasks in one transaction, all or none; returns them in the order of `ids`. */
  async updateMany(ids: readonly string[], input: UpdateTaskInput): Promise<Task[]> {
    if (ids.length > MAX_BATCH) throw AppError.badInput(`at most ${MAX_BATCH} tasks per batch (got ${ids.length})`, 'ids');
    const taskIds = ids.map((id) => parseId(id, 'ids'));
    const changes = validateUpdate(input, taskModel(this.em));
    return this.transactions.run(this.em, async (tx) => {
      const repository = new TaskRepository(tx);
      if (changes.parentId !== undefined) await repository.lockHierarchy();
      // Locked in id order, so two batches over overlapping tasks queue up instead of deadlocking.
      const tasks = await tx.find(Task, { id: { $in: [...new Set(taskIds)] } }, { lockMode: LockMode.PESSIMISTIC_WRITE, orderBy: { id: 'asc' } });
      const byId = new Map(tasks.map((t) => [t.id, t]));
      const missing = taskIds.find((id) => !byId.has(id));
      if (missing) throw new AppError('NOT_FOUND', `Task ${missing} does not exist`, { id: missing, field: 'ids' });
      for (const task of tasks) await this.applyUpdate(tx, repository, task, changes);
      return taskIds.map((id) => byId.get(id) as Task);
    });
  }

  /** Checks a parent change for loops, then applies `changes` with their event (nothing when nothing changes). */
  private async applyUpdate(tx: EntityManager, repository: TaskRepository, task: Task, changes: TaskChanges): Promise<void> {
    const { parentId, ...fields } = changes;
    if (parentId != null && parentId !== task.parent?.id) await assertNoLoop(repository, task.id, parentId);
    recordChange(tx, task, 'UPDATED', this.actor, (draft) => {
      // Only what differs is assigned: an equal value (a new but equal JSON object) must not make the row dirty.
      const current = draft as unknown as Record<string, unknown>;
      for (const [key, value] of Object.entries(fields)) if (!sameValue(current[key], value)) current[key] = value;
      if (parentId !== undefined && (draft.parent?.id ?? null) !== parentId) draft.parent = parentId ? tx.getReference(Task, parentId, { wrapped: true }) : null;
    });
  }
}

/** Refuses a parent that is the task itself or one of its descendants, or that does not exist. */
async function assertNoLoop(repository: TaskRepository, taskId: string, parentId: string): Promise<void> {
  if (parentId === taskId) throw new AppError('CYCLE_DETECTED', 'A task cannot be its own parent', { field: 'parentId' });
  const chain = await repository.ancestry(parentId);
  if (chain.length === 0) throw new AppError('NOT_FOUND', `Parent task ${parentId} does not exist`, { field: 'parentId', id: parentId });
  if (chain.includes(taskId)) {
    throw new AppError('CYCLE_DETECTED', `Making ${parentId} the parent of ${taskId} would close a loop`, { field: 'parentId' });
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

/** Equal as the API shows them (instants by their ISO form, JSON by its text). */
function sameValue(a: unknown, b: unknown): boolean {
  const json = (v: unknown) => JSON.stringify(v instanceof Date ? v.toISOString() : (v ?? null));
  return json(a) === json(b);
}

function parentNotFound(parentId: string): AppError {
  return new AppError('NOT_FOUND', `Parent task ${parentId} does not exist`, { field: 'parentId', id: parentId });
}
