/**
 * The task table's queries, on the operation's fork (or a mutation's transaction). The ORM builds the simple ones
 * (tasks by id, dependency edges, subtask counts); the statements it cannot say are written here, each with why:
 * a listing page with its count, parents and dependencies in one statement, subtask pages, statistics, and the
 * hierarchy checks and locks of writes. Rows become plain {@link TaskView}s through the model (task.model.ts).
 */
import { JsonType, LockMode, ReferenceKind, raw, type EntityMetadata } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { limitClause, query, type Sql } from '../db/sql.js';
import { TaskDependency } from '../dependencies/dependency.entity.js';
import { TaskEvent } from '../events/event.entity.js';
import { Task, type TaskStatus, type TaskView } from './task.entity.js';
import { castOf, taskModel, type TaskColumns, type TaskModel } from './task.model.js';
import { orderSql, type TaskOrder } from './task.ordering.js';
import { IS_BLOCKED_SQL } from './task.filters.js';

type Row = Record<string, unknown>;

/** A compiled listing: its filter, its page bounds (filter and cursors) and order, and how many rows to fetch. */
export interface PageQuery {
  where: Sql;
  pageWhere: Sql;
  order: TaskOrder;
  backward: boolean;
  /** Rows to fetch (one more than the page, to know whether more exist). */
  fetch: number;
  /** The order's key columns (a projected read must carry them, to make cursors). */
  orderColumns: readonly string[];
}

/** What a listing page fetches with its rows. */
export interface PageWith {
  totalCount?: boolean;
  parent?: boolean;
  dependencies?: boolean;
}

/** A page row: the task, and what the page included (related tasks already as views). */
export interface PageRow {
  task: TaskView;
  total?: number;
  parent?: TaskView | null;
  dependencies?: TaskView[];
}

/** One row of `task.statistics.ts`'s grouped statement. */
export interface GroupRow {
  grp: 'status' | 'priority' | 'type' | 'assignee' | 'all';
  status: TaskStatus | null;
  priority: string | null;
  type: string | null;
  assignee: string | null;
  n: number;
  overdue: number;
  blocked: number;
}

/** Transaction-level advisory lock keys that serialize changes to the shape of the task hierarchy and of the dependency graph. */
/** The query builder's texts, per model (one per ORM) and shape: see TaskRepository.built. */
const builtTexts = new WeakMap<TaskModel, Map<string, string>>();
const MAX_BUILT_TEXTS = 2000;

const HIERARCHY_LOCK_KEY = 7_264_911_002;
const DEPENDENCY_GRAPH_LOCK_KEY = 7_264_911_003;

export class TaskRepository {
  constructor(private readonly em: EntityManager) {}

  get model(): TaskModel {
    return taskModel(this.em);
  }

  /**
   * The properties behind `columns` (every property when undefined), for the ORM's `select`. Typed as the query
   * builder's literal field names, which names read from the metadata are.
   */
  private properties(columns: TaskColumns | undefined, alias: string): never[] {
    const names = columns?.names ?? this.model.columns;
    return names.map((c) => `${alias}.${this.model.propertyOf.get(c)?.name ?? c}`) as never[];
  }

  /** Tasks by id, in no particular order; absent ids are simply missing. */
  async byIds(ids: readonly string[], columns?: TaskColumns): Promise<TaskView[]> {
    const text = this.built(`byIds:${columns?.names.join(',') ?? '*'}:${ids.length}`, () =>
      this.em.createQueryBuilder(Task, 't').select(this.properties(columns, 't')).where({ id: { $in: [...ids] } }),
    );
    return (await query<Row>(this.em, { text, params: [...ids] })).map((r) => this.model.toView(r));
  }

  /**
   * Task `id` locked FOR UPDATE on the transaction, as a managed entity of it (changes to it are flushed), or
   * undefined. The statement is the query builder's, its text built once (as `findOne` would build it every time).
   */
  async lock(id: string): Promise<Task | undefined> {
    const text = this.built('lock', () => this.em.createQueryBuilder(Task, 't').select('*').where({ id }).setLockMode(LockMode.PESSIMISTIC_WRITE));
    const [row] = await query<Row>(this.em, { text, params: [id] });
    return row && this.em.map(Task, row);
  }

  /** The ids of the tasks `taskId` waits for that are not COMPLETED, in id order (the query builder's, built once). */
  async blockers(taskId: string): Promise<string[]> {
    const text = this.built('blockers', () =>
      this.em
        .createQueryBuilder(TaskDependency, 'd')
        .select(raw('d.depends_on_id as blocker'))
        .join('d.dependsOn', 't')
        .where({ task: taskId, 't.status': { $ne: 'COMPLETED' } } as never)
        .orderBy({ dependsOn: 'asc' }),
    );
    return (await query<Row>(this.em, { text, params: [taskId, 'COMPLETED'] })).map((r) => r.blocker as string);
  }

  /**
   * The tasks across dependency edges from each of `ids`: what they wait for (`dependencies`) or what waits for
   * them (`dependents`), in edge order (oldest edge first, then id). `key` is the id the edge starts from.
   */
  async across(direction: 'dependencies' | 'dependents', ids: readonly string[], columns?: TaskColumns): Promise<Array<{ key: string; task: TaskView }>> {
    const [from, to] = direction === 'dependencies' ? (['task', 'dependsOn'] as const) : (['dependsOn', 'task'] as const);
    const keyColumn = direction === 'dependencies' ? 'task_id' : 'depends_on_id';
    const text = this.built(`across:${direction}:${columns?.names.join(',') ?? '*'}:${ids.length}`, () =>
      this.em
        .createQueryBuilder(TaskDependency, 'd')
        .select([`d.${from}` as never, ...this.properties(columns, 't')])
        .join(`d.${to}`, 't')
        .where({ [from]: { $in: [...ids] } })
        .orderBy([{ [from]: 'asc' }, { createdAt: 'asc' }, { 't.id': 'asc' } as never]),
    );
    return (await query<Row>(this.em, { text, params: [...ids] })).map((r) => ({ key: r[keyColumn] as string, task: this.model.toView(r) }));
  }

  /**
   * The SQL text the ORM's query builder makes for one shape of read (which columns, how many ids), built once per
   * shape: building it costs more CPU than sending it. The ids are its only parameters, in order.
   */
  private built(shape: string, build: () => { toQuery(): { sql: string; params: readonly unknown[] } }): string {
    let texts = builtTexts.get(this.model);
    if (!texts) builtTexts.set(this.model, (texts = new Map<string, string>()));
    let text = texts.get(shape);
    if (text === undefined) {
      text = build().toQuery().sql;
      // Shapes are few (column sets of the documents served, times batch sizes up to 100); a bound keeps them so.
      if (texts.size >= MAX_BUILT_TEXTS) texts.clear();
      texts.set(shape, text);
    }
    return text;
  }

  /**
   * One page of a listing in one statement, with what `include` asks for. Hand-written: the count, the parents and
   * the dependencies ride along as a scalar subquery, a join and a JSON aggregate, which no ORM query says at once.
   */
  async page(q: PageQuery, include: PageWith, columns?: TaskColumns): Promise<PageRow[]> {
    const select = [columns?.select('t', q.orderColumns) ?? 't.*'];
    const params: unknown[] = [];
    let from = 'task t';
    if (include.totalCount) {
      // Uncorrelated: PostgreSQL runs it once per statement, not per row.
      select.push(`(select count(*)::int from task t where ${q.where.text}) as listing_total`);
      params.push(...q.where.params);
    }
    if (include.parent) {
      select.push(`case when lp.id is null then null else ${columns?.json('lp') ?? 'to_json(lp)'} end as listing_parent`);
      from += ' left join task lp on lp.id = t.parent_id';
    }
    if (include.dependencies) {
      select.push(`(select coalesce(json_agg(${columns?.json('ld') ?? 'to_json(ld)'} order by le.created_at, ld.id), '[]') from task_dependency le
         join task ld on ld.id = le.depends_on_id where le.task_id = t.id) as listing_dependencies`);
    }
    params.push(...q.pageWhere.params);
    const rows = await query<Row>(this.em, {
      text: `select ${select.join(', ')} from ${from} where ${q.pageWhere.text} order by ${orderSql(q.order, q.backward)} ${limitClause(q.fetch)}`,
      params,
    });
    const view = (r: Row) => this.model.toView(r);
    return rows.map((r) => ({
      task: view(r),
      ...(include.totalCount ? { total: r.listing_total as number } : {}),
      ...(include.parent ? { parent: r.listing_parent ? view(r.listing_parent as Row) : null } : {}),
      ...(include.dependencies ? { dependencies: (r.listing_dependencies as Row[]).map(view) } : {}),
    }));
  }

  /** How many tasks match a compiled filter. Hand-written: the filter is SQL (task.filters.ts). */
  async count(where: Sql): Promise<number> {
    const [row] = await query<{ n: number }>(this.em, { text: `select count(*)::int as n from task t where ${where.text}`, params: where.params });
    return row?.n ?? 0;
  }

  /**
   * The first `q.fetch` matching children of each parent, ranked per parent. Hand-written: a window function
   * (`row_number() over (partition by parent_id ...)`) is what keeps it one statement for any number of parents.
   */
  async subtaskPages(parentIds: readonly string[], q: PageQuery, columns?: TaskColumns): Promise<TaskView[]> {
    const rows = await query<Row>(this.em, {
      text: `select s.* from (
         select ${columns?.select('t', q.orderColumns) ?? 't.*'}, row_number() over (partition by t.parent_id order by ${orderSql(q.order)}) as listing_rank
         from task t where t.parent_id = any(?::uuid[]) and ${q.pageWhere.text}
       ) s where s.listing_rank <= ? order by s.parent_id, s.listing_rank`,
      params: [[...parentIds], ...q.pageWhere.params, q.fetch],
    });
    return rows.map((r) => this.model.toView(r));
  }

  /** Matching children per parent, in one grouped statement (hand-written: the filter is SQL). */
  async subtaskCounts(parentIds: readonly string[], where: Sql): Promise<Map<string, number>> {
    const rows = await query<{ parent_id: string; n: number }>(this.em, {
      text: `select t.parent_id, count(*)::int as n from task t where t.parent_id = any(?::uuid[]) and (${where.text}) group by t.parent_id`,
      params: [[...parentIds], ...where.params],
    });
    return new Map(rows.map((r) => [r.parent_id, r.n]));
  }

  /** Children and completed children per parent, archived included. */
  async subtaskSummaries(parentIds: readonly string[]): Promise<Map<string, { total: number; completed: number }>> {
    const rows = await this.em
      .createQueryBuilder(Task, 't')
      .select(['t.parent', raw('count(*)::int as total'), raw(`(count(*) filter (where t.status = 'COMPLETED'))::int as completed`)])
      .where({ parent: { $in: [...parentIds] } })
      .groupBy('t.parent')
      .execute('all', false);
    return new Map((rows as unknown as Array<{ parent_id: string; total: number; completed: number }>).map((r) => [r.parent_id, r]));
  }

  /**
   * Counts of the tasks matching `where` per status, priority, type and assignee, with the overdue and blocked ones,
   * in one statement. Hand-written: grouping sets are not something the ORM's query builder says.
   */
  async statistics(where: Sql): Promise<GroupRow[]> {
    // The row flags (overdue, blocked) are computed once per row, below the grouping. grouping() sets a bit for each
    // column a set does not group by, the first argument being the high bit: 7 = grouped by status alone, and so on.
    return query<GroupRow>(this.em, {
      text: `with m as (
         select t.status, t.priority, t.type, t.assignee,
                (t.due_at < now() and t.status not in ('COMPLETED', 'CANCELLED')) as overdue,
                ${IS_BLOCKED_SQL} as blocked
         from task t where ${where.text}
       )
       select case grouping(status, priority, type, assignee)
                when 7 then 'status' when 11 then 'priority' when 13 then 'type' when 14 then 'assignee' else 'all' end as grp,
              status, priority, type, assignee, count(*)::int as n,
              (count(*) filter (where overdue))::int as overdue, (count(*) filter (where blocked))::int as blocked
       from m
       group by grouping sets ((status), (priority), (type), (assignee), ())
       order by grp, n desc, assignee asc nulls last`,
      params: where.params,
    });
  }

  // Inside a mutation's transaction (`this.em` is the transaction's EntityManager).

  /** Serializes parent changes: two of them cannot close a loop together. Hand-written: advisory locks have no ORM form. */
  async lockHierarchy(): Promise<void> {
    await this.em.execute('select pg_advisory_xact_lock(?)', [HIERARCHY_LOCK_KEY]);
  }

  /** Serializes dependency additions, so the cycle check and the insert are atomic. */
  async lockDependencyGraph(): Promise<void> {
    await this.em.execute('select pg_advisory_xact_lock(?)', [DEPENDENCY_GRAPH_LOCK_KEY]);
  }

  /**
   * Task `id` and its ancestors' ids (empty when it does not exist). Hand-written: a recursive walk up the
   * hierarchy in one statement.
   */
  async ancestry(id: string): Promise<string[]> {
    const rows = await this.em.execute<Array<{ id: string }>>(
      `with recursive chain(id, parent_id) as (
         select id, parent_id from task where id = ?
         union
         select t.id, t.parent_id from task t join chain c on t.id = c.parent_id
       )
       select id from chain`,
      [id],
    );
    return rows.map((r) => r.id);
  }

  /**
   * Whether `from` already waits, directly or not, for `to`. Hand-written: a recursive walk of the dependency graph
   * in one statement.
   */
  async reaches(from: string, to: string): Promise<boolean> {
    const rows = await this.em.execute<Array<{ found: number }>>(
      `with recursive reach(id) as (
         select depends_on_id from task_dependency where task_id = ?
         union
         select d.depends_on_id from task_dependency d join reach r on d.task_id = r.id
       )
       select 1 as found from reach where id = ? limit 1`,
      [from, to],
    );
    return rows.length > 0;
  }

  /**
   * Locks task `id` FOR KEY SHARE (it cannot be deleted under us; its own updates are not held up); false when it
   * does not exist. Hand-written: the ORM's lock modes have no KEY SHARE.
   */
  async lockKeyShare(id: string): Promise<boolean> {
    const rows = await this.em.execute<Array<{ id: string }>>('select id from task where id = ? for key share', [id]);
    return rows.length > 0;
  }
  /**
   * The one write outside the unit of work (bench/README.md, "Ninth round"): a new task and its CREATED event in
   * one statement, which commits alone: one round trip instead of BEGIN, two INSERTs and COMMIT, and no change
   * sets. Columns, casts and values come from the entities' metadata (`task` holds properties, `parent` as its id).
   * With `clientId`, a task that exists already is left alone and nothing is returned. A missing parent fails the
   * foreign key, as the unit of work's INSERT would.
   */
  async insertWithEvent(task: Record<string, unknown>, event: Record<string, unknown>, clientId: boolean, columns?: TaskColumns): Promise<TaskView | undefined> {
    const metadata = this.em.getMetadata();
    const taskValues = insertValues(metadata.get(Task) as EntityMetadata<object>, task);
    const eventValues = insertValues(metadata.get(TaskEvent) as EntityMetadata<object>, event);
    const returning = (columns?.names ?? this.model.columns).join(', ');
    const text =
      `with created as (insert into task (${taskValues.columns}) values (${taskValues.values})` +
      `${clientId ? ' on conflict (id) do nothing' : ''} returning ${returning}), ` +
      `event as (insert into task_event (${eventValues.columns}) select ${eventValues.values} from created) select * from created`;
    const [row] = await query<Row>(this.em, { text, params: [...taskValues.params, ...eventValues.params] });
    return row && this.model.toView(row);
  }
}


/**
 * An INSERT's column list, `?::type` placeholders and values for `data`, keyed by property
 * (a many-to-one by its id): columns and casts from the metadata, instants as ISO text, JSON as its text.
 */
function insertValues(meta: EntityMetadata<object>, data: Record<string, unknown>): { columns: string; values: string; params: unknown[] } {
  const columns: string[] = [];
  const values: string[] = [];
  const params: unknown[] = [];
  for (const prop of meta.props) {
    const value = data[prop.name];
    if (value === undefined || prop.fieldNames?.length !== 1 || (prop.kind !== ReferenceKind.SCALAR && prop.kind !== ReferenceKind.MANY_TO_ONE)) continue;
    columns.push(prop.fieldNames[0] as string);
    values.push(`?${castOf(prop as never)}`);
    params.push(value instanceof Date ? value.toISOString() : prop.customType instanceof JsonType && value !== null ? JSON.stringify(value) : value);
  }
  return { columns: columns.join(', '), values: values.join(', '), params };
}
