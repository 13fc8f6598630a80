/**
 * Reading the change feed for subscriptions: positions `(xid, id)` as numbers that compare, and reads past a
 * position with the same visibility rule as `Query.taskEvents` (src/tasks/feed.service.ts): only events whose
 * transaction is older than every transaction still running are "settled", and settled events only ever appear
 * after the settled ones already seen. That is what lets a subscriber's position never skip an event.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { limitClause, query, sql, type Sql } from '../db/sql.js';
import { AppError } from '../errors.js';
import { decodeCursor } from '../pagination.js';
import { TaskEvent, type EventKind } from '../events/event.entity.js';

/** An event's place in the feed: `(xid, id)`, compared in that order. */
export interface FeedPosition {
  readonly xid: bigint;
  readonly id: bigint;
}

/** Before every event. */
export const FEED_START: FeedPosition = { xid: 0n, id: 0n };

/** Which events a subscriber wants; an absent field matches everything. */
export interface EventFilter {
  readonly taskId?: string;
  readonly kinds?: ReadonlySet<EventKind>;
}

/** Is `a` strictly after `b`? */
export function isAfter(a: FeedPosition, b: FeedPosition): boolean {
  return a.xid > b.xid || (a.xid === b.xid && a.id > b.id);
}

export function positionOf(event: TaskEvent): FeedPosition {
  return { xid: BigInt(event.xid), id: BigInt(event.id) };
}

/** Parses a `taskEvents` cursor; BAD_USER_INPUT (field `after`) for anything else. */
export function parseFeedCursor(cursor: string): FeedPosition {
  const [xid, id] = decodeCursor(cursor, 2, 'after');
  if (typeof xid !== 'string' || typeof id !== 'string' || !/^\d{1,20}$/.test(xid) || !/^\d{1,19}$/.test(id)) {
    throw AppError.badInput('after is not a cursor of taskEvents', 'after');
  }
  return { xid: BigInt(xid), id: BigInt(id) };
}

export function matches(event: TaskEvent, filter: EventFilter): boolean {
  return (filter.taskId === undefined || event.taskId === filter.taskId) && (filter.kinds === undefined || filter.kinds.has(event.kind));
}

const SETTLED = 'e.xid < pg_snapshot_xmin(pg_current_snapshot())';

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
    sql`select e.xid::text as xid, e.id::text as id from task_event e where ${{ text: SETTLED, params: [] }} order by e.xid desc, e.id desc limit 1`,
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
    text: `select e.*, ${SETTLED} as settled from task_event e where ${from.text} order by e.xid, e.id ${limitClause(limit)}`,
    params: from.params,
  });
  const settled = rows.filter((r) => r.settled);
  return { events: toEvents(em, settled), heldBack: settled.length < rows.length };
}

/** Up to `limit` settled events after `position` that match `filter`: a subscriber's replay or catch-up. */
export async function readMatching(em: EntityManager, position: FeedPosition, filter: EventFilter, limit: number): Promise<TaskEvent[]> {
  const conditions: Sql[] = [{ text: SETTLED, params: [] }, after(position)];
  if (filter.taskId !== undefined) conditions.push(sql`e.task_id = ${filter.taskId}`);
  if (filter.kinds !== undefined) conditions.push(sql`e.kind = any(${[...filter.kinds]}::task_event_kind[])`);
  const rows = await query(em, {
    text: `select e.* from task_event e where ${conditions.map((c) => c.text).join(' and ')} order by e.xid, e.id ${limitClause(limit)}`,
    params: conditions.flatMap((c) => c.params),
  });
  return toEvents(em, rows);
}
