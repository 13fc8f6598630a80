/**
 * Reading events: the change feed (`taskEvents`), and each task's own events, batched for a whole page of tasks.
 *
 * The feed orders events by `(xid, id)` and returns only events whose transaction is older than every transaction
 * still running (`xid < pg_snapshot_xmin(pg_current_snapshot())`). A transaction that began earlier but commits
 * later holds the feed back until it ends instead of being skipped, so a client polling with its last cursor never
 * misses an event.
 */
import type DataLoader from 'dataloader';
import type { EntityManager } from '@mikro-orm/postgresql';
import { AppError } from '../errors.js';
import { limitClause, query, sql, type Sql } from '../db/sql.js';
import { TaskEvent } from './event.entity.js';
import { perTaskLoader, type TaskPageArgs } from '../db/per-task-pages.js';
import { decodeCursor, encodeCursor, pageSize, type Page } from '../pagination.js';

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

/** Loader of each task's events page (oldest first) for one set of page arguments. */
export function taskEventsLoader(em: EntityManager, args: TaskPageArgs): DataLoader<string, Page<TaskEvent>> {
  return perTaskLoader(em, { table: 'task_event', entity: TaskEvent, keys: [{ column: 'id', cast: 'bigint', of: (e) => String(e.id) }] }, args);
}
