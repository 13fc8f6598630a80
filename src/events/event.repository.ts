/**
 * Reading events: the change feed (`taskEvents`, and the subscriptions' reads past a position), and each task's own
 * events, batched for a whole page of tasks. Hand-written: the feed's snapshot horizon is a condition on the
 * running transactions (`pg_current_snapshot()`), which no ORM query says.
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
import { FEED_START, type EventFilter, type FeedPosition } from './feed.position.js';
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

function after(position: FeedPosition): Sql {
  return sql`(e.xid, e.id) > (${position.xid.toString()}::xid8, ${position.id.toString()}::bigint)`;
}

function toEvents(em: EntityManager, rows: Array<Record<string, unknown>>): TaskEvent[] {
  return rows.map(({ settled: _settled, ...columns }) => em.map(TaskEvent, columns));
}

/** The last settled event's position, or {@link FEED_START} on an empty feed: where "now" is. */
export async function readHead(em: EntityManager): Promise<FeedPosition> {
  const [row] = await query<{ xid: string; id: string }>(
    em,
    sql`select e.xid::text as xid, e.id::text as id from task_event e where ${SETTLED} order by e.xid desc, e.id desc limit 1`,
  );
  return row ? { xid: BigInt(row.xid), id: BigInt(row.id) } : FEED_START;
}

/**
 * Up to `limit` settled events after `position`, in feed order, and whether committed events after them are held
 * back (a transaction that began earlier is still running): then the reader should look again soon, because that
 * transaction may end without writing an event, and so without a notification.
 */
export async function readSettled(em: EntityManager, position: FeedPosition, limit: number): Promise<{ events: TaskEvent[]; heldBack: boolean }> {
  // Unsettled rows sort after settled ones (a larger xid), so the settled ones are a prefix of the page.
  const from = after(position);
  const rows = await query<Record<string, unknown> & { settled: boolean }>(em, {
    text: `select e.*, ${SETTLED.text} as settled from task_event e where ${from.text} order by e.xid, e.id ${limitClause(limit)}`,
    params: from.params,
  });
  const settled = rows.filter((r) => r.settled);
  return { events: toEvents(em, settled), heldBack: settled.length < rows.length };
}

/** Up to `limit` settled events after `position` that match `filter`: a subscriber's replay or catch-up. */
export async function readMatching(em: EntityManager, position: FeedPosition, filter: EventFilter, limit: number): Promise<TaskEvent[]> {
  const conditions: Sql[] = [SETTLED, after(position)];
  if (filter.taskId !== undefined) conditions.push(sql`e.task_id = ${filter.taskId}`);
  if (filter.kinds !== undefined) conditions.push(sql`e.kind = any(${[...filter.kinds]}::task_event_kind[])`);
  const rows = await query(em, {
    text: `select e.* from task_event e where ${conditions.map((c) => c.text).join(' and ')} order by e.xid, e.id ${limitClause(limit)}`,
    params: conditions.flatMap((c) => c.params),
  });
  return toEvents(em, rows);
}
