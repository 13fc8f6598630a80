/**
 * Relay cursor pagination over a keyset: a cursor is the opaque encoding of the order-key values of its row, and
 * the next page starts strictly after those values. Every order ends with `id`, so no row is skipped or repeated
 * however many rows tie on the other keys.
 */
import { AppError } from '../graphql/errors.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 100;

/** A cursor's payload: the values of the order keys of one row, in order. Dates travel as ISO strings. */
export type CursorValues = Array<string | number | null>;

/** Encodes a row position as an opaque cursor. */
export function encodeCursor(values: CursorValues): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

/**
 * Decodes a cursor made by {@link encodeCursor} for an order of `keyCount` keys.
 *
 * @throws AppError BAD_USER_INPUT for anything else, never a 500.
 */
export function decodeCursor(cursor: string, keyCount: number, field: string): CursorValues {
  let values: unknown;
  try {
    if (!/^[A-Za-z0-9_-]{1,2048}$/.test(cursor)) throw new Error('not base64url');
    values = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw AppError.badInput(`${field} is not a cursor of this listing`, field);
  }
  const ok =
    Array.isArray(values) &&
    values.length === keyCount &&
    values.every((v) => v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)));
  if (!ok) throw AppError.badInput(`${field} is not a cursor of this listing`, field);
  return values as CursorValues;
}

/** Checks `first` (default 50, 0..100). */
export function pageSize(first: number | null | undefined, field = 'first'): number {
  if (first == null) return DEFAULT_PAGE_SIZE;
  if (first < 0 || first > MAX_PAGE_SIZE) {
    throw AppError.badInput(`${field} must be from 0 to ${MAX_PAGE_SIZE} (got ${first})`, field);
  }
  return first;
}

/** A page as the connection resolvers see it. */
export interface Page<T> {
  rows: T[];
  cursors: string[];
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  /** Counts every matching row; runs only if `totalCount` is selected. */
  totalCount: () => Promise<number>;
}
