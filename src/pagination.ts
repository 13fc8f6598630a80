/**
 * Relay cursor pagination over a keyset: a cursor is the opaque encoding of the order-key values of its row, and
 * the next page starts strictly after those values. Every order ends with `id`, so no row is skipped or repeated
 * however many rows tie on the other keys.
 */
import { AppError } from './errors.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 100;

/** A cursor's payload: the values of the order keys of one row, in order. Dates travel as ISO strings. */
export type CursorValues = Array<string | number | null>;

/** Encodes a row position as an opaque cursor. */
export function encodeCursor(values: CursorValues): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

function notACursor(field: string): AppError {
  return AppError.badInput(`${field} is not a cursor of this listing`, field);
}

/** Parses any cursor made by {@link encodeCursor}; BAD_USER_INPUT for anything else, never a 500. */
function parseCursor(cursor: string, field: string): CursorValues {
  let values: unknown;
  try {
    if (!/^[A-Za-z0-9_-]{1,2048}$/.test(cursor)) throw new Error('not base64url');
    values = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw notACursor(field);
  }
  const ok =
    Array.isArray(values) && values.every((v) => v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)));
  if (!ok) throw notACursor(field);
  return values as CursorValues;
}

/**
 * Decodes a cursor made by {@link encodeCursor} for an order of `keyCount` keys.
 *
 * @throws AppError BAD_USER_INPUT for anything else, never a 500.
 */
export function decodeCursor(cursor: string, keyCount: number, field: string): CursorValues {
  const values = parseCursor(cursor, field);
  if (values.length !== keyCount) throw notACursor(field);
  return values;
}

/** Encodes a row position under the order identified by `signature` (see {@link decodeSignedCursor}). */
export function encodeSignedCursor(signature: string, values: CursorValues): string {
  return encodeCursor([signature, ...values]);
}

/**
 * Decodes a cursor made by {@link encodeSignedCursor} and checks it was made under the same order: the values of
 * another order's keys would otherwise be compared with the wrong columns.
 *
 * @throws AppError BAD_USER_INPUT (field `field`) for a malformed cursor or one made under another order.
 */
export function decodeSignedCursor(cursor: string, signature: string, field: string): CursorValues {
  const [sig, ...values] = parseCursor(cursor, field);
  if (typeof sig !== 'string') throw notACursor(field);
  if (sig !== signature) {
    throw AppError.badInput(`${field} was made for another orderBy: use the same orderBy as the page it came from`, field);
  }
  return values;
}

/** Checks `first` / `last` (default 50, 0..100). */
export function pageSize(first: number | null | undefined, field = 'first'): number {
  if (first == null) return DEFAULT_PAGE_SIZE;
  if (first < 0 || first > MAX_PAGE_SIZE) {
    throw AppError.badInput(`${field} must be from 0 to ${MAX_PAGE_SIZE} (got ${first})`, field);
  }
  return first;
}

/** The Relay page arguments of a connection field. */
export interface PageArgs {
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
}

/** Which rows a page holds: `limit` rows read forwards after `after`, or backwards before `before`. */
export interface PageWindow {
  /** Read backwards (`last`, or `before` alone): fetch in reverse order, then flip the rows back. */
  backward: boolean;
  limit: number;
  after: string | null;
  before: string | null;
}

/**
 * Validates Relay page arguments. `last` without `before` gives the final rows; `before` alone means the
 * default-sized page just before it. Both cursors may bound one page.
 *
 * @throws AppError BAD_USER_INPUT for `first` with `last`, or a size outside 0..100.
 */
export function pageWindow(args: PageArgs): PageWindow {
  if (args.first != null && args.last != null) {
    throw AppError.badInput('Give first or last, not both', 'last');
  }
  const backward = args.last != null || (args.first == null && args.after == null && args.before != null);
  return {
    backward,
    limit: backward ? pageSize(args.last, 'last') : pageSize(args.first, 'first'),
    after: args.after ?? null,
    before: args.before ?? null,
  };
}

/** A page as the connection resolvers see it. */
export interface Page<T> {
  rows: T[];
  /** The cursor of row `i` (null past the end), made when asked: a page whose edges' cursors are not selected makes none. */
  cursor: (i: number) => string | null;
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  /** Counts every matching row; runs only if `totalCount` is selected. */
  totalCount: () => Promise<number>;
}

/**
 * Turns fetched rows (in fetch order, up to `limit + 1` of them) into a page: the extra row only says that more
 * rows exist in the fetch direction; backward pages are flipped back to the listing's order. The other
 * direction's flag is whether a cursor was given (Relay allows that approximation).
 */
export function toPage<T>(fetched: T[], window: PageWindow, cursorOf: (row: T) => string, totalCount: () => Promise<number>): Page<T> {
  const more = fetched.length > window.limit;
  const rows = fetched.slice(0, window.limit);
  if (window.backward) rows.reverse();
  return {
    rows,
    cursor: (i) => (i >= 0 && i < rows.length ? cursorOf(rows[i] as T) : null),
    // With both cursors, rows exist beyond the far one too (at least its own row).
    hasNextPage: window.backward ? window.before != null : more || window.before != null,
    hasPreviousPage: window.backward ? more || window.after != null : window.after != null,
    totalCount,
  };
}
