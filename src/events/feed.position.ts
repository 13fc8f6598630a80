/**
 * Places in the change feed: positions `(xid, id)` as numbers that compare, the cursor of `taskEvents` read as one,
 * and what a subscriber asks for. The reads past a position are in event.repository.ts.
 */
import { AppError } from '../errors.js';
import { decodeCursor } from '../pagination.js';
import type { EventKind, TaskEvent } from './event.entity.js';

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

