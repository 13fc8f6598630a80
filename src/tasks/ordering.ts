/**
 * The orders of a task listing, in one place: each order key's SQL expression, how it sorts (nulls included),
 * how its value travels in a cursor, and the keyset condition "strictly after this row" for any mix of keys and
 * directions. Every order ends with `id`, so the order is total and a cursor never skips or repeats a row.
 */
import { AppError } from '../errors.js';
import { TASK_PRIORITIES, TASK_STATUSES } from './task.entity.js';
import type { TaskRecord } from './task.record.js';
import { join, type Sql } from '../db/sql.js';

export type TaskOrderField = 'CREATED_AT' | 'UPDATED_AT' | 'PRIORITY' | 'DUE_AT' | 'TITLE' | 'STATUS';
export type OrderDirection = 'ASC' | 'DESC';

/** The GraphQL `TaskOrder` input. */
export interface TaskOrderInput {
  field: TaskOrderField;
  direction?: OrderDirection | null;
}

/** A cursor value of one key: ISO instants, enum names, titles and ids are strings; a missing due date is null. */
export type KeyValue = string | null;

interface KeyDef {
  /** The SQL expression over alias `t`. */
  sql: string;
  /** The cast of a cursor value compared with it (so PostgreSQL never guesses a type). */
  cast: string;
  /** Nullable keys sort their nulls last in both directions (DUE_AT, per the contract). */
  nullable: boolean;
  value(task: TaskRecord): KeyValue;
  /** Whether a value decoded from a client's cursor is one this key can hold. */
  accepts(value: unknown): boolean;
}

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const isInstant = (v: unknown) => typeof v === 'string' && ISO_INSTANT.test(v) && !Number.isNaN(Date.parse(v));
const oneOf = (values: readonly string[]) => (v: unknown) => typeof v === 'string' && values.includes(v);

/**
 * An instant as cursors carry it. A stored value no Date can hold (PostgreSQL's 'infinity') cannot be a cursor:
 * refused here with the field's name (the ORM's hydration refused such rows before reads bypassed it).
 */
function iso(value: Date, field: string): string {
  const time = value instanceof Date ? value.getTime() : Number.NaN;
  if (Number.isNaN(time)) throw new TypeError(`Task.${field} holds ${String(value)}, not an instant a cursor can carry`);
  return value.toISOString();
}

// PRIORITY and STATUS are PostgreSQL enums declared in rank order: ordering the column is the contract's order.
const KEYS: Record<TaskOrderField | 'ID', KeyDef> = {
  CREATED_AT: { sql: 't.created_at', cast: '::timestamptz', nullable: false, value: (t) => iso(t.createdAt, 'createdAt'), accepts: isInstant },
  UPDATED_AT: { sql: 't.updated_at', cast: '::timestamptz', nullable: false, value: (t) => iso(t.updatedAt, 'updatedAt'), accepts: isInstant },
  PRIORITY: { sql: 't.priority', cast: '::task_priority', nullable: false, value: (t) => t.priority, accepts: oneOf(TASK_PRIORITIES) },
  STATUS: { sql: 't.status', cast: '::task_status', nullable: false, value: (t) => t.status, accepts: oneOf(TASK_STATUSES) },
  TITLE: { sql: 't.title', cast: '::varchar', nullable: false, value: (t) => t.title, accepts: (v) => typeof v === 'string' },
  DUE_AT: { sql: 't.due_at', cast: '::timestamptz', nullable: true, value: (t) => (t.dueAt == null ? null : iso(t.dueAt, 'dueAt')), accepts: (v) => v === null || isInstant(v) },
  ID: { sql: 't.id', cast: '::uuid', nullable: false, value: (t) => t.id, accepts: (v) => typeof v === 'string' && UUID.test(v) },
};

interface OrderKey {
  name: TaskOrderField | 'ID';
  def: KeyDef;
  direction: OrderDirection;
}

/** A validated order: its keys (ending with id) and a signature that cursors carry. */
export interface TaskOrder {
  keys: OrderKey[];
  /** Identifies the order, so a cursor made under another order is refused rather than misread. */
  signature: string;
}

/** The `task` columns of an order's keys (a projected read must carry them, to make cursors). */
export function orderColumns(order: TaskOrder): string[] {
  return order.keys.map((k) => k.def.sql.replace(/^t\./, ''));
}

/** The contract's default: newest first. */
export const DEFAULT_ORDER: readonly TaskOrderInput[] = [{ field: 'CREATED_AT', direction: 'DESC' }];

/**
 * Validates `orderBy` (default CREATED_AT DESC) and appends `id` in the direction of the last key.
 *
 * @throws AppError BAD_USER_INPUT (field `orderBy`) when a field appears twice.
 */
export function resolveOrder(orderBy: readonly TaskOrderInput[] | null | undefined): TaskOrder {
  const given = orderBy && orderBy.length > 0 ? orderBy : DEFAULT_ORDER;
  const seen = new Set<string>();
  const keys: OrderKey[] = [];
  for (const { field, direction } of given) {
    if (seen.has(field)) throw AppError.badInput(`orderBy lists ${field} more than once`, 'orderBy');
    seen.add(field);
    keys.push({ name: field, def: KEYS[field], direction: direction ?? 'ASC' });
  }
  keys.push({ name: 'ID', def: KEYS.ID, direction: keys.at(-1)?.direction ?? 'DESC' });
  return { keys, signature: keys.map((k) => `${k.name}:${k.direction === 'ASC' ? 'A' : 'D'}`).join(',') };
}

/** The key values of a row, in order: what its cursor encodes. */
export function keyValues(order: TaskOrder, task: TaskRecord): KeyValue[] {
  return order.keys.map((k) => k.def.value(task));
}

/** Whether decoded cursor values fit the order's keys (types, enum names, nulls only where allowed). */
export function acceptsValues(order: TaskOrder, values: readonly unknown[]): values is KeyValue[] {
  return values.length === order.keys.length && order.keys.every((k, i) => k.def.accepts(values[i]));
}

/** Reading backwards (`last`/`before`) flips every key, nulls included. */
function effective(key: OrderKey, reverse: boolean): { asc: boolean; nullsLast: boolean } {
  return { asc: (key.direction === 'ASC') !== reverse, nullsLast: !reverse };
}

/** The `order by` list (without the keyword); `reverse` reads the same order backwards. */
export function orderSql(order: TaskOrder, reverse = false): string {
  return order.keys
    .map((k) => {
      const { asc, nullsLast } = effective(k, reverse);
      return `${k.def.sql} ${asc ? 'asc' : 'desc'}${k.def.nullable ? (nullsLast ? ' nulls last' : ' nulls first') : ''}`;
    })
    .join(', ');
}

function equals(key: OrderKey, value: KeyValue): Sql {
  return value === null ? { text: `${key.def.sql} is null`, params: [] } : { text: `${key.def.sql} = ?${key.def.cast}`, params: [value] };
}

/** "Sorts strictly after `value` on this key alone", or undefined when nothing can. */
function beyond(key: OrderKey, value: KeyValue, reverse: boolean): Sql | undefined {
  const { asc, nullsLast } = effective(key, reverse);
  const col = key.def.sql;
  if (value === null) return nullsLast ? undefined : { text: `${col} is not null`, params: [] };
  const cmp: Sql = { text: `${col} ${asc ? '>' : '<'} ?${key.def.cast}`, params: [value] };
  return key.def.nullable && nullsLast ? { text: `(${cmp.text} or ${col} is null)`, params: cmp.params } : cmp;
}

/**
 * The condition "sorts strictly after the row with these key values" in `order` (read backwards when `reverse`:
 * then it means "strictly before" in the forward order).
 */
export function afterSql(order: TaskOrder, values: readonly KeyValue[], reverse = false): Sql {
  const sameDirection = order.keys.every((k) => k.direction === order.keys[0]!.direction);
  if (sameDirection && order.keys.every((k) => !k.def.nullable)) {
    // A row comparison walks a composite (key, id) index from the cursor on.
    const { asc } = effective(order.keys[0]!, reverse);
    const cols = order.keys.map((k) => k.def.sql).join(', ');
    const marks = order.keys.map((k) => `?${k.def.cast}`).join(', ');
    return { text: `(${cols}) ${asc ? '>' : '<'} (${marks})`, params: [...values] };
  }
  // Mixed directions or nulls: a row is after the cursor if it ties on the first i keys and is beyond on key i.
  const disjuncts: Sql[] = [];
  order.keys.forEach((key, i) => {
    const step = beyond(key, values[i] ?? null, reverse);
    if (!step) return;
    const ties = order.keys.slice(0, i).map((k, j) => equals(k, values[j] ?? null));
    disjuncts.push(join([...ties, step], ' and '));
  });
  if (disjuncts.length === 0) return { text: 'false', params: [] };
  return { text: `(${disjuncts.map((d) => `(${d.text})`).join(' or ')})`, params: disjuncts.flatMap((d) => d.params) };
}
