/**
 * The task service: rules and units of work. One instance per operation, on that operation's fork.
 * Every mutation is one transaction; resolvers only translate arguments and results.
 */
import { randomUUID } from 'node:crypto';
import { LockMode, UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager, QBFilterQuery } from '@mikro-orm/postgresql';
import { AppError } from '../graphql/errors.js';
import { Task } from './task.entity.js';
import { taskWhere, type TaskFilterInput } from './filters.js';
import type { TaskLoaders } from './task.loaders.js';
import { decodeCursor, encodeCursor, pageSize, type Page } from './pagination.js';
import { parseId, validateCreate, validateUpdate, type CreateTaskInput, type TaskChanges, type UpdateTaskInput } from './task.validation.js';

/** Parent changes take this transaction-level advisory lock so two of them cannot close a loop together. */
const HIERARCHY_LOCK_KEY = 7_264_911_002;

/** The next `updatedAt`: now, but always strictly after the previous value (API.md). */
function nextUpdatedAt(previous: Date): Date {
  const now = Date.now();
  return new Date(Math.max(now, previous.getTime() + 1));
}

export class TaskService {
  constructor(
    private readonly em: EntityManager,
    private readonly loaders: TaskLoaders,
    private readonly actor: string,
  ) {}

  /** A task by id (archived or not), or null. Batched with every other read of this operation. */
  async get(id: string): Promise<Task | null> {
    return this.loaders.taskById.load(parseId(id));
  }

  /** Loads a task's parent through the batching loader. */
  async parentOf(task: Task): Promise<Task | null> {
    const parentId = task.parent?.id;
    return parentId ? this.loaders.taskById.load(parentId) : null;
  }

  /** One page of tasks matching `filter`, newest first (created_at DESC, id DESC). */
  async list(filter: TaskFilterInput | null | undefined, first: number | null | undefined, after: string | null | undefined): Promise<Page<Task>> {
    const limit = pageSize(first);
    const where = taskWhere(filter);
    const qb = this.em.createQueryBuilder(Task, 't').select('*').where(where as QBFilterQuery<Task>);
    if (after != null) {
      const [createdAt, id] = decodeCursor(after, 2, 'after');
      const at = typeof createdAt === 'string' ? new Date(createdAt) : undefined;
      if (!at || Number.isNaN(at.getTime()) || typeof id !== 'string') throw AppError.badInput('after is not a cursor of this listing', 'after');
      // A row comparison walks the (created_at, id) index from the cursor on.
      qb.andWhere('(t.created_at, t.id) < (?, ?)', [at, id]);
    }
    const rows = limit === 0 ? [] : await qb.orderBy({ createdAt: 'desc', id: 'desc' }).limit(limit + 1).getResult();
    const hasNextPage = rows.length > limit;
    if (hasNextPage) rows.pop();
    // Register loaded rows with the loader so later `task(id)`/`parent` reads of them cost nothing.
    for (const row of rows) this.loaders.taskById.prime(row.id, row);
    return {
      rows,
      cursors: rows.map((t) => encodeCursor([t.createdAt.toISOString(), t.id])),
      hasNextPage,
      hasPreviousPage: after != null,
      totalCount: () => this.em.count(Task, where),
    };
  }

  /**
   * Creates a task. With a client-supplied id that exists already, returns the existing task unchanged; when
   * several such calls race, the losers' inserts fail on the primary key and they return the winner's row.
   */
  async create(input: CreateTaskInput): Promise<Task> {
    const data = validateCreate(input);
    if (data.id && data.id === data.parentId) throw new AppError('CYCLE_DETECTED', 'A task cannot be its own parent', { field: 'parentId' });
    try {
      return await this.em.transactional(async (tx) => {
        if (data.id) {
          const existing = await tx.findOne(Task, data.id);
          if (existing) return existing;
        }
        if (data.parentId && !(await tx.findOne(Task, data.parentId, { fields: ['id'] }))) {
          throw new AppError('NOT_FOUND', `Parent task ${data.parentId} does not exist`, { field: 'parentId', id: data.parentId });
        }
        const now = new Date();
        const { parentId, id, ...fields } = data;
        const task = tx.create(Task, {
          ...fields,
          id: id ?? randomUUID(),
          parent: parentId ? tx.getReference(Task, parentId) : null,
          createdAt: now,
          updatedAt: now,
        });
        await tx.flush();
        return task;
      });
    } catch (err) {
      if (data.id && err instanceof UniqueConstraintViolationException) {
        const winner = await this.em.fork().findOne(Task, data.id);
        if (winner) return winner;
      }
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
    const changes = validateUpdate(input);
    return this.em.transactional(async (tx) => {
      if (changes.parentId !== undefined) await tx.execute('select pg_advisory_xact_lock(?)', [HIERARCHY_LOCK_KEY]);
      const task = await tx.findOne(Task, taskId, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!task) throw AppError.notFound('Task', taskId);
      if (expectedVersion != null && task.version !== expectedVersion) {
        throw AppError.versionConflict(taskId, expectedVersion, task.version);
      }
      if (changes.parentId != null && changes.parentId !== task.parent?.id) await this.assertNoLoop(tx, taskId, changes.parentId);
      if (applyChanges(tx, task, changes)) {
        task.updatedAt = nextUpdatedAt(task.updatedAt);
        await tx.flush();
      }
      return task;
    });
  }

  /** Refuses a parent that is the task itself or one of its descendants. */
  private async assertNoLoop(tx: EntityManager, taskId: string, parentId: string): Promise<void> {
    if (parentId === taskId) throw new AppError('CYCLE_DETECTED', 'A task cannot be its own parent', { field: 'parentId' });
    const rows = await tx.execute<Array<{ id: string }>>(
      `with recursive chain(id, parent_id) as (
         select id, parent_id from task where id = ?
         union
         select t.id, t.parent_id from task t join chain c on t.id = c.parent_id
       )
       select id from chain`,
      [parentId],
    );
    if (rows.length === 0) throw new AppError('NOT_FOUND', `Parent task ${parentId} does not exist`, { field: 'parentId', id: parentId });
    if (rows.some((r) => r.id === taskId)) {
      throw new AppError('CYCLE_DETECTED', `Making ${parentId} the parent of ${taskId} would close a loop`, { field: 'parentId' });
    }
  }
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) return JSON.stringify(a) === JSON.stringify(b);
  return (a ?? null) === (b ?? null);
}

/** Copies changed fields onto the entity; returns whether anything changed. */
function applyChanges(tx: EntityManager, task: Task, changes: TaskChanges): boolean {
  let changed = false;
  const { parentId, ...fields } = changes;
  for (const [key, value] of Object.entries(fields) as Array<[keyof typeof fields, unknown]>) {
    if (!sameValue(task[key], value)) {
      (task as unknown as Record<string, unknown>)[key] = value;
      changed = true;
    }
  }
  if (parentId !== undefined && (task.parent?.id ?? null) !== parentId) {
    task.parent = parentId ? tx.getReference(Task, parentId, { wrapped: true }) : null;
    changed = true;
  }
  return changed;
}
