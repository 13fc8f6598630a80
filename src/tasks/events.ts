/**
 * The content of the change feed: every change to a task records one `TaskEvent` in the same transaction, with the
 * changed fields as `{ field: { from, to } }`, and bumps the task's `updatedAt` (strictly increasing) and its
 * `version` (the statements are in task.writes.ts and transition.statements.ts).
 */
import type { JsonObject } from './task.entity.js';
import type { TaskRecord } from './task.record.js';

/** The fields an event reports, as GraphQL names them. */
const TRACKED = [
  'title',
  'description',
  'type',
  'priority',
  'status',
  'assignee',
  'tags',
  'metadata',
  'context',
  'progress',
  'result',
  'errorMessage',
  'retryCount',
  'estimatedMinutes',
  'actualMinutes',
  'dueAt',
  'startedAt',
  'completedAt',
  'archivedAt',
] as const;

type Snapshot = Record<string, unknown>;

function json(value: unknown): unknown {
  return value instanceof Date ? value.toISOString() : (value ?? null);
}

/** The task's reportable fields as JSON values (dates as ISO strings, the parent as `parentId`). */
export function snapshot(task: TaskRecord): Snapshot {
  const s: Snapshot = { parentId: task.parent?.id ?? null };
  for (const field of TRACKED) s[field] = json(task[field]);
  return s;
}

/** `{ field: { from, to } }` for every field that differs. */
export function diff(before: Snapshot, after: Snapshot): JsonObject {
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
