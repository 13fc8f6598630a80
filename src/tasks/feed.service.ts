/**
 * Reading events and executions: the change feed (`taskEvents`), and each task's own events and executions,
 * batched for a whole page of tasks.
 *
 * The feed orders events by `(xid, id)` and returns only events whose transaction is older than every transaction
 * still running (`xid < pg_snapshot_xmin(pg_current_snapshot())`). A transaction that began earlier but commits
 * later holds the feed back until it ends instead of being skipped, so a client polling with its last cursor never
 * misses an event.
 */
import DataLoader from 'dataloader';
import type { EntityManager } from '@mikro-orm/postgresql';
import { AppError } from '../errors.js';
import { limitClause, query, sql, type Sql } from '../db/sql.js';
import { TaskEvent } from './event.entity.js';
import { TaskExecution } from './execution.entity.js';
import { decodeCursor, encodeCursor, pageSize, type Page } from './pagination.js';

/** `(xid, id)` of an event: its place in the change feed. */
export function feedCursor(event: TaskEvent): string {
  return encodeCursor([String(event.xid), String(event.id)]);
}

function feedPosition(cursor: string, field: string): [string, string] {
  const [xid, id] = decodeCursor(cursor, 2, field);
  if (typeof xid !== 'string' || typeof id !== 'string' || !/^\d{1,20}$/.test(xid) || !/^\d{1,20}$/.test(id)) {
    throw AppError.badInput(`${field} is not a cursor of this listing`, field);
  }
  return [xid, id];
}

export interface FeedArgs {
  after?: string | null;
  before?: string | null;
  first?: number | null;
  last?: number | null;
}

/** Events of whole transactions only, as explained above. */
const SETTLED = sql`e.xid < pg_snapshot_xmin(pg_current_snapshot())`;

/** The change feed: every settled event in `(xid, id)` order, paged by cursors in either direction. */
export async function readFeed(em: EntityManager, args: FeedArgs): Promise<Page<TaskEvent>> {
  if (args.first != null && args.last != null) throw AppError.badInput('give first or last, not both', 'last');
  const backward = args.last != null || (args.before != null && args.first == null);
  const limit = backward ? pageSize(args.last, 'last') : pageSize(args.first, 'first');
  const conditions: Sql[] = [SETTLED];
  if (args.after != null) {
    const [xid, id] = feedPosition(args.after, 'after');
    conditions.push(sql`(e.xid, e.id) > (${xid}::xid8, ${id}::bigint)`);
  }
  if (args.before != null) {
    const [xid, id] = feedPosition(args.before, 'before');
    conditions.push(sql`(e.xid, e.id) < (${xid}::xid8, ${id}::bigint)`);
  }
  const where = { text: conditions.map((c) => c.text).join(' and '), params: conditions.flatMap((c) => c.params) };
  const direction = backward ? 'desc' : 'asc';
  const rows =
    limit === 0
      ? []
      : await query(em, {
          text: `select e.* from task_event e where ${where.text} order by e.xid ${direction}, e.id ${direction} ${limitClause(limit + 1)}`,
          params: where.params,
        });
  const more = rows.length > limit;
  const events = rows.slice(0, limit).map((r) => em.map(TaskEvent, r));
  if (backward) events.reverse();
  return {
    rows: events,
    cursor: (i) => (i >= 0 && i < events.length ? feedCursor(events[i] as TaskEvent) : null),
    hasNextPage: backward ? args.before != null : more,
    hasPreviousPage: backward ? more : args.after != null,
    totalCount: async () => {
      const [row] = await query<{ n: string }>(em, sql`select count(*) as n from task_event e where ${SETTLED}`);
      return Number(row?.n ?? 0);
    },
  };
}

/** Arguments of a per-task connection (`Task.events`, `Task.executions`). */
export interface TaskPageArgs {
  first?: number | null;
  after?: string | null;
}

interface PerTaskSpec<T> {
  table: string;
  entity: new () => T;
  /** Order keys, oldest first; the cursor holds their values. */
  keys: Array<{ column: string; cast: string; of: (row: T) => string }>;
}

const EVENTS: PerTaskSpec<TaskEvent> = {
  table: 'task_event',
  entity: TaskEvent,
  keys: [{ column: 'id', cast: 'bigint', of: (e) => String(e.id) }],
};

const EXECUTIONS: PerTaskSpec<TaskExecution> = {
  table: 'task_execution',
  entity: TaskExecution,
  keys: [
    { column: 'started_at', cast: 'timestamptz', of: (e) => e.startedAt.toISOString() },
    { column: 'id', cast: 'uuid', of: (e) => e.id },
  ],
};

/**
 * One page of rows per task for a whole batch of tasks, in one statement: a window function numbers each task's
 * rows, and the first `first + 1` of each are kept.
 */
function perTaskLoader<T>(em: EntityManager, spec: PerTaskSpec<T>, args: TaskPageArgs): DataLoader<string, Page<T>> {
  const limit = pageSize(args.first);
  const after = args.after != null ? decodeCursor(args.after, spec.keys.length, 'after') : undefined;
  if (after?.some((v) => typeof v !== 'string' || v.length > 64)) throw AppError.badInput('after is not a cursor of this listing', 'after');
  const order = spec.keys.map((k) => `x.${k.column}`).join(', ');
  const position = after
    ? {
        text: ` and (${spec.keys.map((k) => `x.${k.column}`).join(', ')}) > (${spec.keys.map((k) => `?::${k.cast}`).join(', ')})`,
        params: after,
      }
    : { text: '', params: [] };
  const counts = new DataLoader<string, number>(async (ids) => {
    const rows = await query<{ task_id: string; n: string }>(em, {
      text: `select task_id, count(*) as n from ${spec.table} where task_id = any(?) group by task_id`,
      params: [[...ids]],
    });
    const byId = new Map(rows.map((r) => [r.task_id, Number(r.n)]));
    return ids.map((id) => byId.get(id) ?? 0);
  });
  return new DataLoader<string, Page<T>>(async (ids) => {
    const rows =
      limit === 0
        ? []
        : await query(em, {
            text: `select * from (
                     select x.*, row_number() over (partition by x.task_id order by ${order}) as rn
                       from ${spec.table} x where x.task_id = any(?)${position.text}
                   ) p where p.rn <= ? order by p.task_id, p.rn`,
            params: [[...ids], ...position.params, limit + 1],
          });
    const byTask = new Map<string, T[]>();
    for (const row of rows) {
      const { rn: _rn, ...columns } = row;
      const list = byTask.get(String(row.task_id)) ?? [];
      list.push(em.map(spec.entity, columns) as T);
      byTask.set(String(row.task_id), list);
    }
    return ids.map((id) => {
      const all = byTask.get(id) ?? [];
      const page = all.slice(0, limit);
      return {
        rows: page,
        cursor: (i) => (i >= 0 && i < page.length ? encodeCursor(spec.keys.map((k) => k.of(page[i] as T))) : null),
        hasNextPage: all.length > limit,
        hasPreviousPage: after !== undefined,
        totalCount: () => counts.load(id),
      };
    });
  });
}

/** Loader of each task's events page (oldest first) for one set of page arguments. */
export function taskEventsLoader(em: EntityManager, args: TaskPageArgs): DataLoader<string, Page<TaskEvent>> {
  return perTaskLoader(em, EVENTS, args);
}

/** Loader of each task's executions page (oldest first) for one set of page arguments. */
export function taskExecutionsLoader(em: EntityManager, args: TaskPageArgs): DataLoader<string, Page<TaskExecution>> {
  return perTaskLoader(em, EXECUTIONS, args);
}
