/**
 * Input rules of docs/API.md ("Validation") for creating and changing tasks. Each failure is a BAD_USER_INPUT
 * naming the field.
 */
import { AppError } from '../errors.js';
import type { CreateTaskInput, UpdateTaskInput } from '../generated/schema-types.js';
import type { JsonObject, TaskPriority, TaskType } from './task.entity.js';
import type { TaskModel } from './task.model.js';

export const LIMITS = {
  titleMax: 255,
  descriptionMax: 10_000,
  tagsMax: 50,
  tagMax: 64,
  jsonMaxBytes: 64 * 1024,
  nameMax: 255,
} as const;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Checks that `value` is a UUID (task ids are); returns it lower-cased. */
export function parseId(value: string, field = 'id'): string {
  if (!UUID.test(value)) throw AppError.badInput(`${field} must be a UUID, got ${JSON.stringify(value.slice(0, 80))}`, field);
  return value.toLowerCase();
}

export function parseTitle(value: string): string {
  const title = value.trim();
  if (title.length < 1 || title.length > LIMITS.titleMax) {
    throw AppError.badInput(`title must be 1..${LIMITS.titleMax} characters after trimming (got ${title.length})`, 'title');
  }
  return title;
}

export function parseDescription(value: string | null): string | null {
  if (value !== null && value.length > LIMITS.descriptionMax) {
    throw AppError.badInput(`description must be at most ${LIMITS.descriptionMax} characters (got ${value.length})`, 'description');
  }
  return value;
}

/** Tags keep their order; duplicates collapse to the first. */
export function parseTags(value: readonly string[]): string[] {
  if (value.length > LIMITS.tagsMax) throw AppError.badInput(`at most ${LIMITS.tagsMax} tags (got ${value.length})`, 'tags');
  for (const tag of value) {
    if (tag.length < 1 || tag.length > LIMITS.tagMax) {
      throw AppError.badInput(`each tag must be 1..${LIMITS.tagMax} characters (got ${JSON.stringify(tag.slice(0, 80))})`, 'tags');
    }
  }
  return [...new Set(value)];
}

export function parseJson(value: JsonObject, field: 'metadata' | 'context'): JsonObject {
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch {
    // Nested too deeply to serialize (a stack overflow): refused like any other oversized value.
    throw AppError.badInput(`${field} is nested too deeply`, field);
  }
  const bytes = Buffer.byteLength(text);
  if (bytes > LIMITS.jsonMaxBytes) throw AppError.badInput(`${field} must be at most 64 KiB serialized (got ${bytes} bytes)`, field);
  return value;
}

export function parseEstimatedMinutes(value: number | null): number | null {
  if (value !== null && value < 0) throw AppError.badInput('estimatedMinutes must be 0 or more', 'estimatedMinutes');
  return value;
}

export function parseProgress(value: number): number {
  if (!Number.isFinite(value) || value < 0 || value > 1) throw AppError.badInput('progress must be from 0 to 1', 'progress');
  return value;
}

export function parseName(value: string | null, field: 'assignee' | 'createdBy'): string | null {
  if (value === null) return null;
  const name = value.trim();
  if (name.length < 1 || name.length > LIMITS.nameMax) {
    throw AppError.badInput(`${field} must be 1..${LIMITS.nameMax} characters after trimming`, field);
  }
  return name;
}

/** The GraphQL inputs, as `npm run codegen` types them from schema.graphql. */
export type { CreateTaskInput, UpdateTaskInput };

/** A validated new task, ready to insert: the input's fields, checked, with the defaults applied. */
export type NewTask = Omit<CreateTaskInput, 'id' | 'parentId' | 'createdBy'> & {
  id: string | undefined;
  title: string;
  description: string | null;
  type: TaskType;
  priority: TaskPriority;
  assignee: string | null;
  createdBy: string;
  tags: string[];
  metadata: JsonObject;
  context: JsonObject;
  estimatedMinutes: number | null;
  dueAt: Date | null;
  parentId: string | null;
};

/**
 * Applies every rule of docs/API.md ("Validation") to a create input. Fields without a rule pass as GraphQL typed
 * them: a column added to the entity and the input needs no line here unless it has a rule.
 */
export function validateCreate(input: CreateTaskInput): NewTask {
  return {
    ...input,
    id: input.id == null ? undefined : parseId(input.id),
    title: parseTitle(input.title),
    description: parseDescription(input.description ?? null),
    // graphql-js applies the schema's defaults; these only cover callers outside GraphQL.
    type: input.type ?? 'FEATURE',
    priority: input.priority ?? 'MEDIUM',
    assignee: parseName(input.assignee ?? null, 'assignee'),
    createdBy: parseName(input.createdBy ?? null, 'createdBy') ?? 'anonymous',
    tags: parseTags(input.tags ?? []),
    metadata: parseJson(input.metadata ?? {}, 'metadata'),
    context: parseJson(input.context ?? {}, 'context'),
    estimatedMinutes: parseEstimatedMinutes(input.estimatedMinutes ?? null),
    dueAt: input.dueAt ?? null,
    parentId: input.parentId == null ? null : parseId(input.parentId, 'parentId'),
  };
}

/** A validated change: only the keys present in the input (`parentId` for the parent). */
export type TaskChanges = { [K in keyof UpdateTaskInput]?: Exclude<UpdateTaskInput[K], undefined> };

/** The rule of each field that has one; a null is checked before (see {@link validateUpdate}). */
const UPDATE_RULES: { [K in keyof UpdateTaskInput]?: (value: NonNullable<UpdateTaskInput[K]> | null) => unknown } = {
  title: (v) => parseTitle(v as string),
  description: (v) => parseDescription(v),
  assignee: (v) => parseName(v, 'assignee'),
  tags: (v) => parseTags(v as string[]),
  metadata: (v) => parseJson(v as JsonObject, 'metadata'),
  context: (v) => parseJson(v as JsonObject, 'context'),
  estimatedMinutes: (v) => parseEstimatedMinutes(v),
  parentId: (v) => (v === null ? null : parseId(v, 'parentId')),
  progress: (v) => parseProgress(v as number),
};

/**
 * Applies every rule of docs/API.md ("Validation") to an update input. An explicit null on a field whose column is
 * not nullable (the entity's metadata says which) is refused; fields without a rule pass as GraphQL typed them.
 */
export function validateUpdate(input: UpdateTaskInput, model: Pick<TaskModel, 'columnOf' | 'propertyOf'>): TaskChanges {
  const changes: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(input) as Array<[keyof UpdateTaskInput, unknown]>) {
    if (value === undefined) continue;
    const column = model.columnOf.get(field === 'parentId' ? 'parent' : field);
    const nullable = column === undefined || model.propertyOf.get(column)?.nullable === true;
    if (value === null && !nullable) throw AppError.badInput(`${field} cannot be null`, field);
    const rule = UPDATE_RULES[field] as ((v: unknown) => unknown) | undefined;
    changes[field] = rule ? rule(value) : value;
  }
  return changes;
}
