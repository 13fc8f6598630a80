/**
 * The orders of a task listing, in one place: each order key's SQL expression, how it sorts (nulls included),
 * how its value travels in a cursor, and the keyset condition "strictly after this row" for any mix of keys and
 * directions. Every order ends with `id`, so the order is total and a cursor never skips or repeats a row.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { TaskOrder as GeneratedTaskOrder } from '../generated/schema-types.js';
import { AppError } from '../errors.js';
import type { TaskView } from './task.entity.js';
import { castOf, taskModel, type TaskModel } from './task.model.js';
import { join, type Sql } from '../db/sql.js';

/** The GraphQL `TaskOrderField`: each value names a property of the Task entity (`DUE_AT` sorts by `dueAt`). */
export type TaskOrderField = TaskOrderInput['field'];
export type OrderDirection = 'ASC' | 'DESC';

/** The GraphQL `TaskOrder` input. */
export type TaskOrderInput = GeneratedTaskOrder;

/** A cursor value of one key: ISO instants, enum names, titles and ids are strings; a missing due date is null. */
export type KeyValue = string | null;

interface KeyDef {
  /** The SQL expression over alias `t`. */
  sql: string;
  /** The cast of a cursor value compared with it (so PostgreSQL never guesses a type). */
  cast: string;
  /** Nullable keys sort their nulls last in both directions (DUE_AT, per the contract). */
  nullable: boolean;
  value(task: TaskView): KeyValue;
  /** Whether a value decoded from a client's cursor is one this key can hold. */
  accepts(value: unknown): boolean;
}

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const isInstant = (v: unknown) => typeof v === 'string' && ISO_INSTANT.test(v) && !Number.isNaN(Date.parse(v));

/**
 * An instant as cursors carry it. A stored value no Date can hold (PostgreSQL's 'infinity') cannot be a cursor:
 * refused here with the field's name.
 */
function iso(value: Date, field: string): string {
  const time = value instanceof Date ? value.getTime() : Number.NaN;
  if (Number.isNaN(time)) throw new TypeError(`Task.${field} holds ${String(value)}, not an instant a cursor can carry`);
  return value.toISOString();
}

/** `DUE_AT` -> `dueAt`: an order field names the property it sorts by. */
function propertyName(field: string): string {
  return field.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * The order key of a property, from the entity's metadata: its column, the cast of its cursor values, whether it
 * is nullable, and what a cursor may hold (enums sort by the rank the PostgreSQL enum type declares).
 */
function keyOf(model: TaskModel, property: string): KeyDef | undefined {
  const column = model.columnOf.get(property);
  const prop = column === undefined ? undefined : model.propertyOf.get(column);
  if (column === undefined || !prop) return undefined;
  const nullable = prop.nullable === true;
  const read = (t: TaskView) => (t as unknown as Record<string, unknown>)[property];
  const orNull = (accepts: (v: unknown) => boolean) => (v: unknown) => (nullable && v === null) || accepts(v);
  const base = { sql: `t.${column}`, cast: castOf(prop), nullable };
  if (prop.runtimeType === 'Date') {
    return { ...base, value: (t) => (read(t) == null ? null : iso(read(t) as Date, property)), accepts: orNull(isInstant) };
  }
  const items = prop.enum ? (prop.items as string[] | undefined) : undefined;
  const accepts = items
    ? (v: unknown) => typeof v === 'string' && items.includes(v)
    : property === 'id'
      ? (v: unknown) => typeof v === 'string' && UUID.test(v)
      : (v: unknown) => typeof v === 'string';
  return { ...base, value: (t) => (read(t) == null ? null : String(read(t))), accepts: orNull(accepts) };
}

const keyCache = new WeakMap<TaskModel, Map<string, KeyDef | undefined>>();

/** The key of order field `field` (or `ID`) under `model`, made once per model. */
function keyFor(model: TaskModel, field: string): KeyDef {
  let keys = keyCache.get(model);
  if (!keys) keyCache.set(model, (keys = new Map<string, KeyDef | undefined>()));
  if (!keys.has(field)) keys.set(field, keyOf(model, propertyName(field)));
  const key = keys.get(field);
  if (!key) throw new Error(`the order field ${field} names no property of the Task entity`);
  return key;
}

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
export function resolveOrder(em: Pick<EntityManager, 'getMetadata' | 'getComparator'>, orderBy: readonly TaskOrderInput[] | null | undefined): TaskOrder {
  const model = taskModel(em);
  const given = orderBy && orderBy.length > 0 ? orderBy : DEFAULT_ORDER;
  const seen = new Set<string>();
  const keys: OrderKey[] = [];
  for (const { field, direction } of given) {
    if (seen.has(field)) throw AppError.badInput(`orderBy lists ${field} more than once`, 'orderBy');
    seen.add(field);
    keys.push({ name: field, def: keyFor(model, field), direction: direction ?? 'ASC' });
  }
  keys.push({ name: 'ID', def: keyFor(model, 'ID'), direction: keys.at(-1)?.direction ?? 'DESC' });
  return { keys, signature: keys.map((k) => `${k.name}:${k.direction === 'ASC' ? 'A' : 'D'}`).join(',') };
}

/** The key values of a row, in order: what its cursor encodes. */
export function keyValues(order: TaskOrder, task: TaskView): KeyValue[] {
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
