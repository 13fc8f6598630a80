/**
 * A task as the read paths hand it to resolvers: the entity's fields in a plain object, built straight from a
 * `task` row. Reads need no identity map, no change tracking and no hydration: mapping rows through MikroORM's
 * `em.map` (merge into the identity map, reference entities, snapshots) took 29-49% of the CPU of a page of 50
 * tasks in the benchmark's profiles, and kept every row alive until the operation ended.
 *
 * The managed `Task` entity (what mutations load, lock and flush) has the same fields, so it is a `TaskRecord`
 * too: resolvers serve both alike.
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
  return (r) => ({
    id: r.id,
    title: r.title,
    description: r.description,
    type: r.type,
    priority: r.priority,
    status: r.status,
    assignee: r.assignee,
    createdBy: r.created_by,
    tags: r.tags,
    metadata: r.metadata,
    context: r.context,
    progress: r.progress,
    result: r.result,
    errorMessage: r.error_message,
    retryCount: r.retry_count,
    estimatedMinutes: r.estimated_minutes,
    actualMinutes: r.actual_minutes,
    dueAt: date(r.due_at),
    startedAt: date(r.started_at),
    completedAt: date(r.completed_at),
    archivedAt: date(r.archived_at),
    createdAt: date(r.created_at) as Date,
    updatedAt: date(r.updated_at) as Date,
    version: r.version,
    parent: r.parent_id === null ? null : { id: r.parent_id },
  });
}
