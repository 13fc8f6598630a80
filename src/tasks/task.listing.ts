/**
 * The task listings: `tasks` (one page, forwards or backwards), `Task.subtasks` (the first pages of many parents
 * in one statement), their counts, and `Task.subtaskSummary`. Statements run on the operation's fork through the
 * repository; every task read becomes a view primed into the operation's `taskById` loader.
 */
import DataLoader from 'dataloader';
import type { EntityManager } from '@mikro-orm/postgresql';
import { join, type Sql } from '../db/sql.js';
import { AppError } from '../errors.js';
import type { TaskView } from './task.entity.js';
import type { TaskColumns } from './task.model.js';
import type { TaskLoaders } from './task.loaders.js';
import { TaskRepository, type PageQuery, type PageWith } from './task.repository.js';
import { taskCondition, type TaskFilterInput } from './task.filters.js';
import { acceptsValues, afterSql, keyValues, orderColumns, resolveOrder, type KeyValue, type TaskOrder, type TaskOrderInput } from './task.ordering.js';
import { decodeSignedCursor, encodeSignedCursor, pageWindow, toPage, type Page, type PageArgs, type PageWindow } from '../pagination.js';

/** Arguments of `Query.tasks` (and, without `last`/`before`, of `Task.subtasks`). */
export interface ListArgs extends PageArgs {
  filter?: TaskFilterInput | null;
  orderBy?: TaskOrderInput[] | null;
}

/** Listing arguments validated and compiled once: what a statement needs, and a key that identifies them. */
export interface PreparedListing {
  where: Sql;
  order: TaskOrder;
  window: PageWindow;
  /** The filter plus the cursors' keyset conditions. */
  pageWhere: Sql;
  /** Encodes every argument in compiled form: equal keys mean the same statement. */
  key: string;
}

/** Related tasks a page's caller will ask for on every row, fetched with the page (see TaskRepository.page). */
export type PageIncludes = PageWith;

/** What of an operation a listing uses: its fork, its loaders, its memoized loaders and the columns it reads. */
export interface ListingContext {
  readonly em: EntityManager;
  readonly loaders: TaskLoaders;
  readonly taskColumns: TaskColumns | undefined;
  loader<K, V>(key: string, create: () => DataLoader<K, V>): DataLoader<K, V>;
}

interface SubtaskSummary {
  total: number;
  completed: number;
  percentCompleted: number;
}

function cursorValues(cursor: string, order: TaskOrder, field: string): KeyValue[] {
  const values = decodeSignedCursor(cursor, order.signature, field);
  if (!acceptsValues(order, values)) throw AppError.badInput(`${field} is not a cursor of this listing`, field);
  return values;
}

/**
 * Validates and compiles listing arguments.
 *
 * @throws AppError BAD_USER_INPUT naming the argument at fault (`filter`, `orderBy`, `first`, `last`, `after`, `before`).
 */
export function prepareListing(em: EntityManager, args: ListArgs): PreparedListing {
  const where = taskCondition(em, args.filter);
  const order = resolveOrder(em, args.orderBy);
  const window = pageWindow(args);
  const bounds = [where];
  if (window.after != null) bounds.push(afterSql(order, cursorValues(window.after, order, 'after')));
  if (window.before != null) bounds.push(afterSql(order, cursorValues(window.before, order, 'before'), true));
  const pageWhere = join(bounds.map((b) => ({ text: `(${b.text})`, params: b.params })), ' and ');
  return { where, order, window, pageWhere, key: JSON.stringify([pageWhere, order.signature, window.backward, window.limit]) };
}

function pageQuery(p: PreparedListing): PageQuery {
  return { where: p.where, pageWhere: p.pageWhere, order: p.order, backward: p.window.backward, fetch: p.window.limit + 1, orderColumns: orderColumns(p.order) };
}

/** The listings of one operation; cheap to build, so resolvers make one per call on the operation's context. */
export class TaskListing {
  private readonly repository: TaskRepository;

  constructor(private readonly ctx: ListingContext) {
    this.repository = new TaskRepository(ctx.em);
  }

  private cursorOf(order: TaskOrder): (task: TaskView) => string {
    return (task) => encodeSignedCursor(order.signature, keyValues(order, task));
  }

  /**
   * One page of `Query.tasks`, in one statement: the rows, and what `include` asks for with them (the count of
   * the filter's rows ignoring cursors, each row's parent and dependencies). `totalCount` costs a statement of its
   * own only when it was not included, or the page is empty.
   */
  async list(args: ListArgs, include: PageIncludes = {}): Promise<Page<TaskView>> {
    const p = prepareListing(this.ctx.em, args);
    const rows = await this.repository.page(pageQuery(p), include, this.ctx.taskColumns);
    const { loaders } = this.ctx;
    const tasks = loaders.records(rows.map((r) => r.task));
    for (const row of rows) {
      if (row.parent) loaders.records([row.parent]);
      if (row.dependencies) loaders.primeDependencies(row.task.id, row.dependencies);
    }
    const total = rows[0]?.total;
    return toPage(tasks, p.window, this.cursorOf(p.order), () => (total !== undefined ? Promise.resolve(total) : this.repository.count(p.where)));
  }

  /**
   * The `Task.subtasks` page of `parentId`. All parents asking with the same arguments share one loader, so the
   * first pages of a whole page of parents cost one statement, and their `totalCount`s one more.
   */
  subtasksOf(parentId: string, args: ListArgs): Promise<Page<TaskView>> {
    const p = prepareListing(this.ctx.em, { ...args, last: null, before: null });
    const counts = this.ctx.loader(
      `subtasks.count:${JSON.stringify(p.where)}`,
      () =>
        new DataLoader<string, number>(async (ids) => {
          const byParent = await this.repository.subtaskCounts(ids, p.where);
          return ids.map((id) => byParent.get(id) ?? 0);
        }),
    );
    const pages = this.ctx.loader(
      `subtasks.page:${p.key}`,
      () =>
        new DataLoader<string, Page<TaskView>>(async (ids) => {
          const rows = await this.repository.subtaskPages(ids, pageQuery(p), this.ctx.taskColumns);
          const byParent = new Map<string, TaskView[]>(ids.map((id) => [id, []]));
          for (const task of this.ctx.loaders.records(rows)) if (task.parent) byParent.get(task.parent.id)?.push(task);
          return ids.map((id) => toPage(byParent.get(id) ?? [], p.window, this.cursorOf(p.order), () => counts.load(id)));
        }),
    );
    return pages.load(parentId);
  }

  /** `Task.subtaskSummary`: every child counts, archived included; one grouped statement per page of tasks. */
  summaryOf(taskId: string): Promise<SubtaskSummary> {
    const loader = this.ctx.loader(
      'subtasks.summary',
      () =>
        new DataLoader<string, SubtaskSummary>(async (ids) => {
          const byParent = await this.repository.subtaskSummaries(ids);
          return ids.map((id) => {
            const { total = 0, completed = 0 } = byParent.get(id) ?? {};
            return { total, completed, percentCompleted: total === 0 ? 0 : (100 * completed) / total };
          });
        }),
    );
    return loader.load(taskId);
  }
}
