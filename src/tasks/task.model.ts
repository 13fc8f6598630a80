/**
 * The `task` table as the rest of the code sees it, read from MikroORM's metadata of the `Task` entity instead of
 * being written out again: the column of each property, how a row becomes a {@link TaskView}, and the properties
 * an event reports. A property added to the entity is read, mapped and reported without another edit.
 */
import { ReferenceKind, type EntityManager, type EntityMetadata, type EntityProperty } from '@mikro-orm/core';
import { Task, type JsonObject, type TaskView } from './task.entity.js';

/** A property an event reports, under the name the event uses (`parentId` for the relation `parent`). */
export interface TrackedProperty {
  readonly property: string;
  readonly name: string;
  readonly relation: boolean;
}

/** The task table, from the entity's metadata. */
export interface TaskModel {
  /** The column of each property that has one (`parent` -> `parent_id`). */
  readonly columnOf: ReadonlyMap<string, string>;
  /** The property behind each column. */
  readonly propertyOf: ReadonlyMap<string, EntityProperty<Task>>;
  /** Every column of the table. */
  readonly columns: readonly string[];
  /** What an event reports (see {@link snapshot}). */
  readonly tracked: readonly TrackedProperty[];
  /** A `task` row (column names; extra columns ignored) to a plain task; only the columns present are set. */
  toView(row: Record<string, unknown>): TaskView;
}

/**
 * Properties an event does not report: the key, the version (every event bumps it) and the two write stamps
 * (`updatedAt` moves with every change; `createdAt` and `createdBy` never change after the CREATED event).
 */
const UNREPORTED = new Set(['createdAt', 'updatedAt', 'createdBy']);

const models = new WeakMap<EntityMetadata<Task>, TaskModel>();

/** The model of the `Task` entity as `em`'s ORM discovered it (built once per ORM). */
export function taskModel(em: Pick<EntityManager, 'getMetadata' | 'getComparator'>): TaskModel {
  const meta = em.getMetadata().get(Task);
  let model = models.get(meta);
  if (!model) models.set(meta, (model = buildModel(meta, em.getComparator())));
  return model;
}

function buildModel(meta: EntityMetadata<Task>, comparator: ReturnType<EntityManager['getComparator']>): TaskModel {
  const props = meta.props.filter((p) => (p.kind === ReferenceKind.SCALAR || p.kind === ReferenceKind.MANY_TO_ONE) && p.fieldNames?.length === 1);
  const columnOf = new Map(props.map((p) => [p.name as string, p.fieldNames[0] as string]));
  const propertyOf = new Map(props.map((p) => [p.fieldNames[0] as string, p]));
  const relations = props.filter((p) => p.kind === ReferenceKind.MANY_TO_ONE).map((p) => p.name as string);
  const tracked = props
    .filter((p) => !p.primary && !p.version && !UNREPORTED.has(p.name))
    .map((p) => {
      const relation = p.kind === ReferenceKind.MANY_TO_ONE;
      return { property: p.name, name: relation ? `${p.name}Id` : (p.name), relation };
    });
  const known = new Set(propertyOf.keys());
  // Timestamps are parsed when first read, not when the row arrives: a page of 50 tasks carries hundreds of them
  // and a query usually asks for one or two. Everything else goes through MikroORM's own result mapper.
  const dates = props.filter((p) => p.kind === ReferenceKind.SCALAR && p.runtimeType === 'Date').map((p) => ({ column: p.fieldNames[0] as string, name: p.name }));
  const dateColumns = new Set(dates.map((d) => d.column));
  const parse = (value: unknown): unknown => parseInstant(value, (text) => comparator.mapResult(meta, { [dates[0]!.column]: text })[dates[0]!.name as keyof Task]);
  const prototype = lazyDates(dates.map((d) => d.name), parse);
  return {
    columnOf,
    propertyOf,
    columns: [...propertyOf.keys()],
    tracked,
    toView(row) {
      const columns: Record<string, unknown> = {};
      const raw: Record<string, unknown> = {};
      for (const key in row) {
        if (dateColumns.has(key)) raw[propertyOf.get(key)!.name] = row[key];
        else if (known.has(key)) columns[key] = row[key];
      }
      const view = Object.assign(Object.create(prototype) as Record<string | symbol, unknown>, comparator.mapResult(meta, columns));
      view[RAW] = raw;
      for (const name of relations) {
        const id = view[name];
        if (typeof id === 'string') view[name] = { id };
      }
      return view as unknown as TaskView;
    },
  };
}

/** Where a view keeps its timestamps until they are read: the column's text, then the parsed value. */
const RAW = Symbol('raw timestamps');

/** A prototype whose accessors parse each timestamp of `names` on first read (a write replaces it). */
function lazyDates(names: readonly string[], parse: (value: unknown) => unknown): object {
  const prototype = {};
  for (const name of names) {
    Object.defineProperty(prototype, name, {
      enumerable: true,
      get(this: { [RAW]: Record<string, unknown> }) {
        const value = this[RAW][name];
        return typeof value === 'string' ? (this[RAW][name] = parse(value)) : value;
      },
      set(this: { [RAW]: Record<string, unknown> }, value: unknown) {
        this[RAW][name] = value;
      },
    });
  }
  return prototype;
}

/**
 * A `timestamptz` as a Date: PostgreSQL's UTC text (`2025-11-23 08:00:00.123+00`, what the app's sessions print)
 * and JSON's ISO form through the engine's ISO parser, anything else through the ORM's mapper. A value no Date can
 * hold (PostgreSQL's 'infinity') stays the text PostgreSQL sent, for the DateTime scalar to refuse loudly.
 */
function parseInstant(value: unknown, viaOrm: (text: string) => unknown): unknown {
  if (typeof value !== 'string') return value;
  let date: unknown;
  if (value.length >= 22 && value.charCodeAt(10) === 32 && value.endsWith('+00')) date = new Date(`${value.slice(0, 10)}T${value.slice(11, -3)}Z`);
  else if (value.length >= 20 && value.charCodeAt(10) === 84) date = new Date(value);
  else date = viaOrm(value);
  return date instanceof Date && !Number.isNaN(date.getTime()) ? date : value;
}

/** A task's reported properties as JSON values: dates as ISO strings, relations as their ids, absent as null. */
export function snapshot(model: TaskModel, task: TaskView): JsonObject {
  const s: JsonObject = {};
  const fields = task as unknown as Record<string, unknown>;
  for (const { property, name, relation } of model.tracked) {
    const value = fields[property];
    if (relation) s[name] = (value as { id?: string } | null | undefined)?.id ?? null;
    else s[name] = value instanceof Date ? value.toISOString() : (value ?? null);
  }
  return s;
}

/** `{ field: { from, to } }` for every field that differs. */
export function diff(before: JsonObject, after: JsonObject): JsonObject {
  const changes: JsonObject = {};
  for (const [field, to] of Object.entries(after)) {
    const from = before[field];
    if (JSON.stringify(from) !== JSON.stringify(to)) changes[field] = { from, to };
  }
  return changes;
}

/** The next `updatedAt`: now, but always strictly after the previous value (docs/API.md, "Versions and events"). */
export function nextUpdatedAt(previous: Date, now = Date.now()): Date {
  return new Date(Math.max(now, previous.getTime() + 1));
}

/** Properties every read takes, whatever the operation asks: the id, the parent (parent resolver), the status (blockers, transitions). */
const ALWAYS = ['id', 'parent', 'status'];

/**
 * A set of `task` columns to read: the operation's, so a page of 8 asked fields reads 8 columns instead of all of
 * them (PostgreSQL formats fewer values, the wire carries less, the driver parses less).
 */
export class TaskColumns {
  readonly names: readonly string[];

  constructor(names: Iterable<string>) {
    this.names = [...new Set(names)].sort();
  }

  /** The select list for table alias `alias`, with `extra` columns (a listing's order keys) added. */
  select(alias: string, extra: readonly string[] = []): string {
    const names = extra.every((c) => this.names.includes(c)) ? this.names : [...new Set([...this.names, ...extra])];
    return names.map((c) => `${alias}.${c}`).join(', ');
  }

  /** A JSON object of the row under `alias` with these columns (as `to_json` would write them). */
  json(alias: string): string {
    return `json_build_object(${this.names.map((c) => `'${c}', ${alias}.${c}`).join(', ')})`;
  }
}

/** The columns behind `properties` (unknown names ignored), with those every read needs. */
export function columnsFor(model: TaskModel, properties: Iterable<string>): TaskColumns {
  const names: string[] = [];
  for (const property of [...ALWAYS, ...properties]) {
    const column = model.columnOf.get(property);
    if (column) names.push(column);
  }
  return new TaskColumns(names);
}

/** The cast a bound value compared with the property's column takes (`::timestamptz`, `::task_status`, ...). */
export function castOf(prop: EntityProperty<Task>): string {
  return `::${(prop.columnTypes[0] ?? 'text').replace(/\(.*\)$/, '')}`;
}
