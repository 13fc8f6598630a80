/**
 * The task listings: `tasks` (one page, forwards or backwards), `Task.subtasks` (the first pages of many parents
 * in one statement), their counts, and `Task.subtaskSummary`. Every statement runs on the operation's reader (so
 * it is counted and logged with the operation), and every loaded row becomes a plain `TaskRecord`
 * (no identity map: see task.record.ts) primed into the operation's `taskById` loader.
 */
import DataLoader from 'dataloader';
import { join, limitClause, query, type Sql } from '../db/sql.js';
import { AppError } from '../errors.js';
import type { GraphQLContext } from '../graphql/context.js';
import type { TaskRecord, TaskRow } from './task.record.js';
import { taskCondition, type TaskFilterInput } from './filters.js';
import { acceptsValues, afterSql, keyValues, orderColumns, orderSql, resolveOrder, type KeyValue, type TaskOrder, type TaskOrderInput } from './ordering.js';
import { decodeSignedCursor, encodeSignedCursor, pageWindow, toPage, type Page, type PageArgs, type PageWindow } from './pagination.js';

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

/**
 * Related tasks a page's caller will ask for on every row, fetched once for the whole page before the page is
 * returned; the resolvers then answer from what the operation already holds, without a promise per row.
 */
export interface PageIncludes {
  /** The count of the filter's rows (`totalCount`). */
  totalCount?: boolean;
  /** The rows' parents (`parent`). */
  parent?: boolean;
  /** The rows' dependencies (`dependencies`, `isBlocked`, `availableTransitions`). */
  dependencies?: boolean;
}

/**
 * A row of a page statement: the task, and what the page included. Related tasks arrive as JSON objects of the
 * same columns (timestamps in ISO form, which the record mapper reads too).
 */
type ListedRow = TaskRow & { listing_total?: number; listing_parent?: TaskRow | null; listing_dependencies?: TaskRow[] };

/** What of the operation's context a listing uses. */
export type ListingContext = Pick<GraphQLContext, 'db' | 'loaders' | 'loader' | 'taskColumns'>;

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
export function prepareListing(args: ListArgs): PreparedListing {
  const where = taskCondition(args.filter);
  const order = resolveOrder(args.orderBy);
  const window = pageWindow(args);
  const bounds = [where];
  if (window.after != null) bounds.push(afterSql(order, cursorValues(window.after, order, 'after')));
  if (window.before != null) bounds.push(afterSql(order, cursorValues(window.before, order, 'before'), true));
  const pageWhere = join(bounds.map((b) => ({ text: `(${b.text})`, params: b.params })), ' and ');
  return { where, order, window, pageWhere, key: JSON.stringify([pageWhere, order.signature, window.backward, window.limit]) };
}

/** The listings of one operation; cheap to build, so resolvers make one per call on the operation's context. */
export class TaskListing {
  constructor(private readonly ctx: ListingContext) {}

  /** Runs one statement with bind parameters on the operation's reader (counted against the operation). */
  private run<T>(text: string, params: unknown[]): Promise<T[]> {
    return query<T>(this.ctx.db, { text, params });
  }

  /** The select list of a listing's rows: the operation's columns and the order's keys (for cursors), or all. */
  private rowColumns(p: PreparedListing): string {
    return this.ctx.taskColumns?.select('t', orderColumns(p.order)) ?? 't.*';
  }

  /** Raw `task` rows to records, primed into the operation's loader for later reads by id. */
  private manage(rows: readonly TaskRow[]): TaskRecord[] {
    return this.ctx.loaders.records(rows);
  }

  private cursorOf(order: TaskOrder): (task: TaskRecord) => string {
    return (task) => encodeSignedCursor(order.signature, keyValues(order, task));
  }

  /**
   * One page of `Query.tasks`, in one statement: the rows, and what `include` asks for with them (the count of
   * the filter's rows ignoring cursors, each row's parent and dependencies). `totalCount` costs a statement of its
   * own only when it was not included, or the page is empty.
   */
  async list(args: ListArgs, include: PageIncludes = {}): Promise<Page<TaskRecord>> {
    const p = prepareListing(args);
    const taskColumns = this.ctx.taskColumns;
    const columns = [this.rowColumns(p)];
    const params: unknown[] = [];
    let from = 'task t';
    if (include.totalCount) {
      // Uncorrelated: PostgreSQL runs it once per statement, not per row.
      columns.push(`(select count(*)::int from task t where ${p.where.text}) as listing_total`);
      params.push(...p.where.params);
    }
    if (include.parent) {
      columns.push(`case when lp.id is null then null else ${taskColumns?.json('lp') ?? 'to_json(lp)'} end as listing_parent`);
      from += ' left join task lp on lp.id = t.parent_id';
    }
    if (include.dependencies) {
      columns.push(`(select coalesce(json_agg(${taskColumns?.json('ld') ?? 'to_json(ld)'} order by le.created_at, ld.id), '[]') from task_dependency le
         join task ld on ld.id = le.depends_on_id where le.task_id = t.id) as listing_dependencies`);
    }
    params.push(...p.pageWhere.params);
    const rows = await this.run<ListedRow>(
      `select ${columns.join(', ')} from ${from} where ${p.pageWhere.text} order by ${orderSql(p.order, p.window.backward)} ${limitClause(p.window.limit + 1)}`,
      params,
    );
    const total = rows[0]?.listing_total;
    const page = toPage(this.manage(rows), p.window, this.cursorOf(p.order), () => (total !== undefined ? Promise.resolve(total) : this.count(p.where)));
    const { loaders } = this.ctx;
    for (const row of rows) {
      if (row.listing_parent) loaders.records([row.listing_parent]);
      if (row.listing_dependencies) loaders.primeDependencies(row.id, row.listing_dependencies);
    }
    return page;
  }

  /** How many tasks match a compiled filter. */
  async count(where: Sql): Promise<number> {
    const [row] = await this.run<{ n: number }>(`select count(*)::int as n from task t where ${where.text}`, where.params);
    return row?.n ?? 0;
  }

  /**
   * The `Task.subtasks` page of `parentId`. All parents asking with the same arguments share one loader, so the
   * first pages of a whole page of parents cost one statement, and their `totalCount`s one more.
   */
  subtasksOf(parentId: string, args: ListArgs): Promise<Page<TaskRecord>> {
    const p = prepareListing({ ...args, last: null, before: null });
    const counts = this.ctx.loader(`subtasks.count:${JSON.stringify(p.where)}`, () => new DataLoader<string, number>((ids) => this.subtaskCounts(ids, p.where)));
    const pages = this.ctx.loader(
      `subtasks.page:${p.key}`,
      () => new DataLoader<string, Page<TaskRecord>>((ids) => this.subtaskPages(ids, p, (id) => counts.load(id))),
    );
    return pages.load(parentId);
  }

  /** The first `limit` matching children of each parent, ranked per parent by a window function. */
  private async subtaskPages(parentIds: readonly string[], p: PreparedListing, countOf: (id: string) => Promise<number>): Promise<Array<Page<TaskRecord>>> {
    const rows = await this.run<TaskRow & { listing_rank: string }>(
      `select s.* from (
         select ${this.rowColumns(p)}, row_number() over (partition by t.parent_id order by ${orderSql(p.order)}) as listing_rank
         from task t where t.parent_id = any(?::uuid[]) and ${p.pageWhere.text}
       ) s where s.listing_rank <= ? order by s.parent_id, s.listing_rank`,
      [[...parentIds], ...p.pageWhere.params, p.window.limit + 1],
    );
    const byParent = new Map<string, TaskRecord[]>(parentIds.map((id) => [id, []]));
    for (const { listing_rank: _rank, ...row } of rows) {
      if (row.parent_id !== null) byParent.get(row.parent_id)?.push(...this.manage([row]));
    }
    return parentIds.map((id) => toPage(byParent.get(id) ?? [], p.window, this.cursorOf(p.order), () => countOf(id)));
  }

  /** Matching children per parent, in one grouped statement. */
  private async subtaskCounts(parentIds: readonly string[], where: Sql): Promise<number[]> {
    const rows = await this.run<{ parent_id: string; n: number }>(
      `select t.parent_id, count(*)::int as n from task t
       where t.parent_id = any(?::uuid[]) and (${where.text}) group by t.parent_id`,
      [[...parentIds], ...where.params],
    );
    const byParent = new Map(rows.map((r) => [r.parent_id, r.n]));
    return parentIds.map((id) => byParent.get(id) ?? 0);
  }

  /** `Task.subtaskSummary`: every child counts, archived included; one grouped statement per page of tasks. */
  summaryOf(taskId: string): Promise<SubtaskSummary> {
    return this.ctx.loader('subtasks.summary', () => new DataLoader<string, SubtaskSummary>((ids) => this.summaries(ids))).load(taskId);
  }

  private async summaries(taskIds: readonly string[]): Promise<SubtaskSummary[]> {
    const rows = await this.run<{ parent_id: string; total: number; completed: number }>(
      `select t.parent_id, count(*)::int as total, (count(*) filter (where t.status = 'COMPLETED'))::int as completed
       from task t where t.parent_id = any(?::uuid[]) group by t.parent_id`,
      [[...taskIds]],
    );
    const byParent = new Map(rows.map((r) => [r.parent_id, r]));
    return taskIds.map((id) => {
      const { total = 0, completed = 0 } = byParent.get(id) ?? {};
      return { total, completed, percentCompleted: total === 0 ? 0 : (100 * completed) / total };
    });
  }
}
