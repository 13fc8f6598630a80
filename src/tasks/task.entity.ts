/**
 * The `Task` entity: one row of the `task` table. Columns are the snake_case of the GraphQL fields (docs/API.md,
 * "Database layout").
 *
 * Enums are PostgreSQL enum types declared in rank order, so `ORDER BY priority` / `ORDER BY status` sort by the
 * contract's order and use plain b-tree indexes, and a stray value cannot be stored.
 */
import { defineEntity, type Opt, type Ref } from '@mikro-orm/core';
import { TextArrayType } from '../db/text-array.type.js';

export const TASK_STATUSES = ['PENDING', 'IN_PROGRESS', 'REVIEW', 'BLOCKED', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
/** Declared from lowest to highest rank, so ascending order is LOW first and CRITICAL sorts greatest. */
export const TASK_PRIORITIES = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
export const TASK_TYPES = [
  'FEATURE',
  'BUG_FIX',
  'REFACTOR',
  'DOCUMENTATION',
  'RESEARCH',
  'DEPLOYMENT',
  'MAINTENANCE',
  'DEVELOPMENT',
  'OPTIMIZATION',
  'SYSTEM',
] as const;

export type TaskStatus = (typeof TASK_STATUSES)[number];
export type TaskPriority = (typeof TASK_PRIORITIES)[number];
export type TaskType = (typeof TASK_TYPES)[number];
export type JsonObject = Record<string, unknown>;

/**
 * A task as resolvers see it: the entity's properties with the parent as its id. A managed `Task` is one; so is a
 * plain object read from rows (task.model.ts), which holds only the columns its operation asked for.
 */
export type TaskView = Omit<Task, 'parent'> & { parent?: { readonly id: string } | null };

export class Task {
  id!: string;
  title!: string;
  description?: string | null;
  type!: TaskType;
  priority!: TaskPriority;
  status: Opt<TaskStatus> = 'PENDING';
  assignee?: string | null;
  createdBy!: string;
  tags: Opt<string[]> = [];
  metadata: Opt<JsonObject> = {};
  context: Opt<JsonObject> = {};
  progress: Opt<number> = 0;
  result?: string | null;
  errorMessage?: string | null;
  retryCount: Opt<number> = 0;
  estimatedMinutes?: number | null;
  actualMinutes?: number | null;
  dueAt?: Date | null;
  startedAt?: Date | null;
  completedAt?: Date | null;
  archivedAt?: Date | null;
  createdAt!: Opt<Date>;
  updatedAt!: Opt<Date>;
  version!: Opt<number>;
  parent?: Ref<Task> | null;
}

export const TaskSchema = defineEntity({
  class: Task,
  tableName: 'task',
  // Every filter and order of the contract has an index; each order ends with `id`, the tie-breaker of cursors.
  // The rules the database itself guards, whatever code writes the row.
  checks: [
    { name: 'task_progress_check', expression: 'progress >= 0 and progress <= 1' },
    { name: 'task_estimated_minutes_check', expression: 'estimated_minutes >= 0' },
    { name: 'task_title_check', expression: "length(btrim(title)) between 1 and 255" },
    { name: 'task_parent_check', expression: 'parent_id <> id' },
  ],
  indexes: [
    { name: 'task_created_at_id_idx', properties: ['createdAt', 'id'] },
    { name: 'task_updated_at_id_idx', properties: ['updatedAt', 'id'] },
    { name: 'task_priority_id_idx', properties: ['priority', 'id'] },
    { name: 'task_status_id_idx', properties: ['status', 'id'] },
    { name: 'task_due_at_id_idx', properties: ['dueAt', 'id'] },
    { name: 'task_title_id_idx', properties: ['title', 'id'] },
    { name: 'task_type_idx', properties: ['type'] },
    { name: 'task_assignee_idx', properties: ['assignee'] },
    // An assignee's live tasks, newest first (the default order): the page walks it in order and stops after
    // `first` rows, and the count reads it alone (index-only once vacuumed) instead of visiting every row.
    {
      name: 'task_assignee_created_at_id_idx',
      expression: 'create index "task_assignee_created_at_id_idx" on "task" ("assignee", "created_at", "id") where "archived_at" is null',
    },
    { name: 'task_created_by_idx', properties: ['createdBy'] },
    { name: 'task_parent_id_idx', properties: ['parent'] },
    { name: 'task_archived_at_idx', expression: 'create index "task_archived_at_idx" on "task" ("archived_at") where "archived_at" is not null' },
    { name: 'task_tags_gin_idx', expression: 'create index "task_tags_gin_idx" on "task" using gin ("tags")' },
    // `search` is a case-insensitive substring match: trigram indexes serve ILIKE '%...%' (extension pg_trgm).
    { name: 'task_title_trgm_idx', expression: 'create index "task_title_trgm_idx" on "task" using gin ("title" gin_trgm_ops)' },
    {
      name: 'task_description_trgm_idx',
      expression: 'create index "task_description_trgm_idx" on "task" using gin ("description" gin_trgm_ops)',
    },
  ],
  properties: (p) => ({
    id: p.uuid().primary(),
    title: p.string().length(255),
    description: p.text().nullable(),
    type: p.enum(TASK_TYPES as unknown as string[]).nativeEnumName('task_type'),
    priority: p.enum(TASK_PRIORITIES as unknown as string[]).nativeEnumName('task_priority'),
    status: p.enum(TASK_STATUSES as unknown as string[]).nativeEnumName('task_status').default('PENDING'),
    assignee: p.string().length(255).nullable(),
    createdBy: p.string().length(255),
    // A literal default: `.default([])` emitted broken SQL in multi-row inserts in MikroORM 6.6.16 (and the schema has it).
    tags: p.type(TextArrayType).columnType('text[]').defaultRaw(`'{}'`).onCreate(() => []),
    metadata: p.json().defaultRaw(`'{}'`),
    context: p.json().defaultRaw(`'{}'`),
    progress: p.double().default(0),
    result: p.text().nullable(),
    errorMessage: p.text().nullable(),
    retryCount: p.integer().default(0),
    estimatedMinutes: p.integer().nullable(),
    actualMinutes: p.integer().nullable(),
    dueAt: p.datetime(3).nullable(),
    startedAt: p.datetime(3).nullable(),
    completedAt: p.datetime(3).nullable(),
    archivedAt: p.datetime(3).nullable(),
    createdAt: p.datetime(3),
    updatedAt: p.datetime(3),
    version: p.integer().version(),
    // MikroORM 6 derived ON UPDATE CASCADE for this foreign key; 7 no longer does, so it is stated (the schema keeps it).
    parent: () => p.manyToOne(Task).ref().nullable().deleteRule('set null').updateRule('cascade').index(false),
  }),
});
