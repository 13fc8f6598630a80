/**
 * A task as the read paths hand it to resolvers: the entity's fields in a plain object, built straight from a
 * `task` row. Reads need no identity map, no change tracking and no hydration: mapping rows through MikroORM's
 * `em.map` (merge into the identity map, reference entities, snapshots) took 29-49% of the CPU of a page of 50
 * tasks in the benchmark's profiles, and kept every row alive until the operation ended.
 *
 * Mutations return records too, mapped from the rows their statements lock and write (task.writes.ts); the `Task`
 * entity, which describes the table for the migrations, has the same fields.
 */
import type { Platform } from '@mikro-orm/core';
import type { JsonObject, TaskPriority, TaskStatus, TaskType } from './task.entity.js';

/** The fields of a task that resolvers read; `parent` is the parent's id only (loaded on demand by id). */
export interface TaskRecord {
  id: string;
  title: string;
  description?: string | null;
  type: TaskType;
  priority: TaskPriority;
  status: TaskStatus;
  assignee?: string | null;
  createdBy: string;
  tags: string[];
  metadata: JsonObject;
  context: JsonObject;
  progress: number;
  result?: string | null;
  errorMessage?: string | null;
  retryCount: number;
  estimatedMinutes?: number | null;
  actualMinutes?: number | null;
  dueAt?: Date | null;
  startedAt?: Date | null;
  completedAt?: Date | null;
  archivedAt?: Date | null;
  createdAt: Date;
  updatedAt: Date;
  version: number;
  parent?: { readonly id: string } | null;
}

/** A `task` row as the driver returns it (timestamps arrive as text: MikroORM turns pg's date parsing off). */
export interface TaskRow {
  id: string;
  title: string;
  description: string | null;
  type: TaskType;
  priority: TaskPriority;
  status: TaskStatus;
  assignee: string | null;
  created_by: string;
  tags: string[];
  metadata: JsonObject;
  context: JsonObject;
  progress: number;
  result: string | null;
  error_message: string | null;
  retry_count: number;
  estimated_minutes: number | null;
  actual_minutes: number | null;
  due_at: string | null;
  started_at: string | null;
  completed_at: string | null;
  archived_at: string | null;
  created_at: string;
  updated_at: string;
  version: number;
  parent_id: string | null;
}

/**
 * A `timestamptz` as PostgreSQL prints it in a UTC session (`2025-11-23 08:00:00.123+00`, which is what the app's
 * connections use) to a Date, through the JS engine's own ISO parser: a fifth of the cost of the general parser
 * (postgres-date) that a page of 50 tasks calls 250 times. Anything else goes to the general parser.
 */
function utcInstant(value: string): Date | undefined {
  if (value.length < 22 || value.charCodeAt(10) !== 32 /* ' ' */ || !value.endsWith('+00')) return undefined;
  const date = new Date(`${value.slice(0, 10)}T${value.slice(11, -3)}Z`);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** A `timestamptz` as `to_json` prints it (`2025-11-23T08:00:00.123+00:00`): the engine's ISO parser reads it. */
function isoInstant(value: string): Date | undefined {
  if (value.length < 20 || value.charCodeAt(10) !== 84 /* 'T' */) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * Builds the mapper of one operation: dates are parsed as the ORM would (by its platform, when neither plain UTC
 * text nor JSON's ISO form).
 */
export function taskRecordMapper(platform: Platform): (row: TaskRow) => TaskRecord {
  const date = (value: string | null): Date | null => {
    if (value === null) return null;
    const parsed: unknown = utcInstant(value) ?? isoInstant(value) ?? platform.parseDate(value);
    // A value no Date can hold (PostgreSQL's 'infinity') stays the text PostgreSQL sent, as the ORM's reads leave
    // it: the DateTime scalar and the cursors then refuse it loudly (masked) instead of inventing an instant. The
    // cast is the one place the type does not hold, for rows the API itself never writes.
    return parsed instanceof Date && !Number.isNaN(parsed.getTime()) ? parsed : (value as unknown as Date);
  };
  return (r) => new StoredTask(r, date);
}

/** Parses one timestamp column (null stays null). */
type DateParser = (value: string | null) => Date | null;

/** The timestamps of a task. */
type TimeField = 'dueAt' | 'startedAt' | 'completedAt' | 'archivedAt' | 'createdAt' | 'updatedAt';

/** An instant as a statement parameter: ISO text (never a driver-formatted local time), or null. */
export const isoOrNull = (value: Date | null | undefined): string | null => (value ? value.toISOString() : null);

/**
 * A record read from a row. Its timestamps are parsed when first read, not when the row arrives: a page of 50 tasks
 * carries 300 of them and a query usually asks for one or two. Reading and assigning work as on a plain record;
 * copy one with {@link copyRecord} (a spread would miss the timestamps, which live on the prototype's accessors).
 */
class StoredTask implements TaskRecord {
  id: string;
  title: string;
  description: string | null;
  type: TaskType;
  priority: TaskPriority;
  status: TaskStatus;
  assignee: string | null;
  createdBy: string;
  tags: string[];
  metadata: JsonObject;
  context: JsonObject;
  progress: number;
  result: string | null;
  errorMessage: string | null;
  retryCount: number;
  estimatedMinutes: number | null;
  actualMinutes: number | null;
  version: number;
  parent: { readonly id: string } | null;
  /** Each timestamp: the column's text until first read, then the parsed Date (or what was assigned). */
  readonly #times: Record<TimeField, string | Date | null>;
  readonly #date: DateParser;

  constructor(r: TaskRow, date: DateParser) {
    this.id = r.id;
    this.title = r.title;
    this.description = r.description;
    this.type = r.type;
    this.priority = r.priority;
    this.status = r.status;
    this.assignee = r.assignee;
    this.createdBy = r.created_by;
    this.tags = r.tags;
    this.metadata = r.metadata;
    this.context = r.context;
    this.progress = r.progress;
    this.result = r.result;
    this.errorMessage = r.error_message;
    this.retryCount = r.retry_count;
    this.estimatedMinutes = r.estimated_minutes;
    this.actualMinutes = r.actual_minutes;
    this.version = r.version;
    this.parent = r.parent_id === null ? null : { id: r.parent_id };
    this.#times = {
      dueAt: r.due_at,
      startedAt: r.started_at,
      completedAt: r.completed_at,
      archivedAt: r.archived_at,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
    this.#date = date;
  }

  /** A timestamp, parsed on first read. */
  #at(field: TimeField): Date | null {
    const value = this.#times[field];
    return typeof value === 'string' ? (this.#times[field] = this.#date(value)) : value;
  }

  get dueAt(): Date | null {
    return this.#at('dueAt');
  }
  set dueAt(value: Date | null) {
    this.#times.dueAt = value;
  }
  get startedAt(): Date | null {
    return this.#at('startedAt');
  }
  set startedAt(value: Date | null) {
    this.#times.startedAt = value;
  }
  get completedAt(): Date | null {
    return this.#at('completedAt');
  }
  set completedAt(value: Date | null) {
    this.#times.completedAt = value;
  }
  get archivedAt(): Date | null {
    return this.#at('archivedAt');
  }
  set archivedAt(value: Date | null) {
    this.#times.archivedAt = value;
  }
  // createdAt and updatedAt are never null in a row.
  get createdAt(): Date {
    return this.#at('createdAt') as Date;
  }
  set createdAt(value: Date) {
    this.#times.createdAt = value;
  }
  get updatedAt(): Date {
    return this.#at('updatedAt') as Date;
  }
  set updatedAt(value: Date) {
    this.#times.updatedAt = value;
  }
}

/** A plain copy of a record, every field included (to change without touching the original). */
export function copyRecord(task: TaskRecord): TaskRecord {
  return {
    id: task.id,
    title: task.title,
    description: task.description,
    type: task.type,
    priority: task.priority,
    status: task.status,
    assignee: task.assignee,
    createdBy: task.createdBy,
    tags: task.tags,
    metadata: task.metadata,
    context: task.context,
    progress: task.progress,
    result: task.result,
    errorMessage: task.errorMessage,
    retryCount: task.retryCount,
    estimatedMinutes: task.estimatedMinutes,
    actualMinutes: task.actualMinutes,
    dueAt: task.dueAt,
    startedAt: task.startedAt,
    completedAt: task.completedAt,
    archivedAt: task.archivedAt,
    createdAt: task.createdAt,
    updatedAt: task.updatedAt,
    version: task.version,
    parent: task.parent,
  };
}
