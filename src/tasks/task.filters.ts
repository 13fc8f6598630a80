/**
 * `TaskFilter` to a SQL condition over the `task` table aliased `t`.
 *
 * Every client value travels as a bind parameter (one `?` per value, sent to PostgreSQL apart from the text, see
 * src/db/sql.ts); the SQL text itself is built only from the fixed fragments below, never from client strings.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { join, type Sql } from '../db/sql.js';
import { AppError } from '../errors.js';
import type { TaskFilter } from '../generated/schema-types.js';
import { castOf, taskModel, type TaskModel } from './task.model.js';
import { parseId } from './task.validation.js';

export type ArchivedFilter = 'EXCLUDE' | 'INCLUDE' | 'ONLY';

/**
 * The GraphQL `TaskFilter` input (DateTime values arrive as `Date`s). A field named after a property of the Task
 * entity with a list of values and no rule below matches any of them: a column added to the entity and to the
 * schema's filter needs no line here.
 */
export type TaskFilterInput = TaskFilter;

/** How deep `and` / `or` / `not` may nest below the top-level filter. */
export const MAX_FILTER_DEPTH = 5;
/** How many conditions (set fields, nested filters included) one filter may hold in all. */
export const MAX_FILTER_CONDITIONS = 100;

const TRUE: Sql = { text: 'true', params: [] };
const FALSE: Sql = { text: 'false', params: [] };

/**
 * The blocked test of docs/API.md ("Dependencies and parents"), in one place: some dependency of `t` is not
 * COMPLETED.
 * Shared with the statistics so `blocked` there means exactly what `isBlocked` means here.
 */
export const IS_BLOCKED_SQL =
  `exists (select 1 from task_dependency d join task dep on dep.id = d.depends_on_id ` +
  `where d.task_id = t.id and dep.status <> 'COMPLETED')`;

/**
 * `t.<column> = ?` for one value, `t.<column> = any(?::<type>[])` with the values as one array parameter for more
 * (PostgreSQL reads `in (...)` as the latter): the statement's text does not depend on how many values there are,
 * so it is prepared once (src/db/driver.ts). One value stays an equality: an index on (column, order key) then
 * serves the page in order, which a `= any` does not. An empty list matches nothing (docs/API.md, "Filters and
 * orders").
 */
function anyOf(column: string, values: readonly unknown[], cast = '::varchar'): Sql {
  if (values.length === 0) return FALSE;
  if (values.length === 1) return { text: `${column} = ?${cast}`, params: [values[0]] };
  return { text: `${column} = any(?${cast}[])`, params: [[...values]] };
}

/** A `text[]` of the values, as one array parameter (pg sends a JS array as a PostgreSQL array). */
function textArray(values: readonly string[]): Sql {
  return { text: '?::text[]', params: [[...values]] };
}

/** Escapes LIKE's wildcards so a search string is matched literally (with `escape '\'`). */
export function likeLiteral(search: string): string {
  return `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

function instant(column: string, op: '<' | '>', value: Date): Sql {
  return { text: `${column} ${op} ?::timestamptz`, params: [value.toISOString()] };
}

/** The filter fields with a rule of their own in {@link leafConditions}, or that nest, or apply at the top only. */
export const RULED_FILTER_FIELDS: ReadonlySet<string> = new Set([
  'ids', 'unassigned', 'tagsAny', 'tagsAll', 'parentId', 'isRoot', 'isBlocked',
  'search', 'dueBefore', 'dueAfter', 'createdAfter', 'createdBefore', 'updatedAfter', 'archived', 'and', 'or', 'not',
]);

/** A filter field without a rule: it names a property, whose column matches any of the values given. */
function propertyCondition(model: TaskModel, field: string, value: unknown): Sql {
  const column = model.columnOf.get(field);
  const prop = column === undefined ? undefined : model.propertyOf.get(column);
  if (column === undefined || !prop || !Array.isArray(value)) throw new Error(`the filter field ${field} has no rule and names no property of the Task entity`);
  const values = prop.runtimeType === 'Date' ? value.map((v: Date) => v.toISOString()) : value;
  return anyOf(`t.${column}`, values, castOf(prop));
}

/** The conditions of one filter node, without `archived` (top level only) and without nesting. */
function leafConditions(model: TaskModel, f: TaskFilterInput): Sql[] {
  const out: Sql[] = [];
  for (const [field, value] of Object.entries(f)) if (value != null && !RULED_FILTER_FIELDS.has(field)) out.push(propertyCondition(model, field, value));
  if (f.ids != null) out.push(anyOf('t.id', f.ids.map((id) => parseId(id, 'ids')), '::uuid'));
  if (f.unassigned != null) out.push({ text: f.unassigned ? 't.assignee is null' : 't.assignee is not null', params: [] });
  if (f.tagsAny != null) out.push(f.tagsAny.length === 0 ? FALSE : join([{ text: 't.tags &&', params: [] }, textArray(f.tagsAny)], ' '));
  if (f.tagsAll != null) out.push(f.tagsAll.length === 0 ? FALSE : join([{ text: 't.tags @>', params: [] }, textArray(f.tagsAll)], ' '));
  if (f.parentId != null) out.push({ text: 't.parent_id = ?::uuid', params: [parseId(f.parentId, 'parentId')] });
  if (f.isRoot != null) out.push({ text: f.isRoot ? 't.parent_id is null' : 't.parent_id is not null', params: [] });
  if (f.isBlocked != null) out.push({ text: f.isBlocked ? IS_BLOCKED_SQL : `not ${IS_BLOCKED_SQL}`, params: [] });
  if (f.search != null) {
    const pattern = likeLiteral(f.search);
    // Two ILIKEs (not one over a concatenation) so each can use its trigram index.
    out.push({ text: `(t.title ilike ? escape '\\' or t.description ilike ? escape '\\')`, params: [pattern, pattern] });
  }
  if (f.dueBefore != null) out.push(instant('t.due_at', '<', f.dueBefore));
  if (f.dueAfter != null) out.push(instant('t.due_at', '>', f.dueAfter));
  if (f.createdAfter != null) out.push(instant('t.created_at', '>', f.createdAfter));
  if (f.createdBefore != null) out.push(instant('t.created_at', '<', f.createdBefore));
  if (f.updatedAfter != null) out.push(instant('t.updated_at', '>', f.updatedAfter));
  return out;
}

/** Counts conditions and checks the nesting depth, before any SQL is built. */
function checkSize(f: TaskFilterInput, depth: number, budget: { left: number }): void {
  if (depth > MAX_FILTER_DEPTH) {
    throw AppError.badInput(`filter nests and/or/not more than ${MAX_FILTER_DEPTH} levels deep: flatten it`, 'filter');
  }
  for (const [key, value] of Object.entries(f)) {
    if (value == null || key === 'archived') continue;
    budget.left -= 1;
    if (budget.left < 0) throw AppError.badInput(`filter holds more than ${MAX_FILTER_CONDITIONS} conditions: simplify it`, 'filter');
  }
  for (const nested of [...(f.and ?? []), ...(f.or ?? []), ...(f.not ? [f.not] : [])]) checkSize(nested, depth + 1, budget);
}

/** The condition of one filter node and everything nested in it: every condition given must hold. */
function nodeCondition(model: TaskModel, f: TaskFilterInput): Sql {
  const parts = leafConditions(model, f);
  if (f.and != null) parts.push(...f.and.map((sub) => nodeCondition(model, sub)));
  // An empty `or` has no filter that holds, so it matches nothing; an empty `and` adds nothing.
  if (f.or != null) parts.push(f.or.length === 0 ? FALSE : join(f.or.map((sub) => wrap(nodeCondition(model, sub))), ' or '));
  if (f.not != null) {
    // A leaf over a null column (assignee, due_at, description) is NULL, not false: coalesce so that `not` of
    // a condition that does not hold is true, as the contract's "this filter does not hold" reads.
    const inner = nodeCondition(model, f.not);
    parts.push({ text: `not coalesce(${inner.text}, false)`, params: inner.params });
  }
  return parts.length === 0 ? TRUE : join(parts.map(wrap), ' and ');
}

function wrap(s: Sql): Sql {
  return s === TRUE || s === FALSE ? s : { text: `(${s.text})`, params: s.params };
}

/** The archived rule: EXCLUDE by default, applied to the top level only (nested filters ignore it). */
function archivedCondition(archived: ArchivedFilter | null | undefined): Sql | undefined {
  switch (archived ?? 'EXCLUDE') {
    case 'EXCLUDE':
      return { text: 't.archived_at is null', params: [] };
    case 'ONLY':
      return { text: 't.archived_at is not null', params: [] };
    case 'INCLUDE':
      return undefined;
  }
}

/**
 * Builds the `where` condition (over alias `t`) of a task listing or statistics.
 *
 * @throws AppError BAD_USER_INPUT (field `filter`) when nesting is deeper than {@link MAX_FILTER_DEPTH} or the
 *   filter holds more than {@link MAX_FILTER_CONDITIONS} conditions; (field `ids`/`parentId`) for a non-UUID id.
 */
export function taskCondition(em: Pick<EntityManager, 'getMetadata' | 'getComparator'>, filter: TaskFilterInput | null | undefined): Sql {
  const f = filter ?? {};
  const model = taskModel(em);
  checkSize(f, 0, { left: MAX_FILTER_CONDITIONS });
  const parts = [archivedCondition(f.archived), nodeCondition(model, f)].filter((p): p is Sql => p !== undefined && p !== TRUE);
  return parts.length === 0 ? TRUE : join(parts.map(wrap), ' and ');
}
