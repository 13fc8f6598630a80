/**
 * Writing the change feed: every change to a task records one `TaskEvent` in the same transaction, with the
 * changed fields as `{ field: { from, to } }`, and bumps the task's `updatedAt` (strictly increasing) and so its
 * `version` (MikroORM increments the version column of every task row it updates).
 */
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { AppError } from '../graphql/errors.js';
import { TaskEvent, type EventKind } from './event.entity.js';
import { Task, type JsonObject } from './task.entity.js';
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

/** The next `updatedAt`: now, but always strictly after the previous value (API.md). */
export function nextUpdatedAt(previous: Date, now = Date.now()): Date {
  return new Date(Math.max(now, previous.getTime() + 1));
}

/** Adds an event to the unit of work (inserted at the next flush of `tx`). */
export function recordEvent(tx: EntityManager, taskId: string, kind: EventKind, actor: string, changes: JsonObject, at = new Date()): TaskEvent {
  return tx.create(TaskEvent, { taskId, kind, actor, at, changes });
}

/**
 * Runs `mutate` on `task` and, if it changed anything (or `extra` reports something), records the event and moves
 * `updatedAt` on (which bumps the version). Returns whether anything changed; nothing is flushed here.
 */
export function changeTask(tx: EntityManager, task: Task, kind: EventKind, actor: string, mutate: () => void, extra: JsonObject = {}): boolean {
  const before = snapshot(task);
  mutate();
  const changes = { ...diff(before, snapshot(task)), ...extra };
  if (Object.keys(changes).length === 0) return false;
  task.updatedAt = nextUpdatedAt(task.updatedAt);
  recordEvent(tx, task.id, kind, actor, changes);
  return true;
}

/**
 * Loads a task for change inside a transaction: locked `FOR UPDATE` (so concurrent changes to it queue up),
 * NOT_FOUND if absent, VERSION_CONFLICT if `expectedVersion` is given and stale.
 */
export async function lockTask(tx: EntityManager, id: string, expectedVersion?: number | null): Promise<Task> {
  const task = await tx.findOne(Task, id, { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true });
  if (!task) throw AppError.notFound('Task', id);
  if (expectedVersion != null && task.version !== expectedVersion) throw AppError.versionConflict(id, expectedVersion, task.version);
  return task;
}
