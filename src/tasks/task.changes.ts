/**
 * How a change to a task is recorded: every change to a managed `Task` persists one `TaskEvent` with the changed
 * fields as `{ field: { from, to } }` and moves `updatedAt` on (strictly increasing); the flush then writes the row
 * with version + 1 (the entity's version property) and the event, in the mutation's transaction.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { TaskEvent, type EventKind } from '../events/event.entity.js';
import type { JsonObject, Task } from './task.entity.js';
import { diff, nextUpdatedAt, snapshot, taskModel } from './task.model.js';

/**
 * Applies `mutate` to the managed (and locked) `task`; if that changed a reported field, or `extra` says what
 * happened (a dependency added), records the `kind` event by `actor`. Returns whether anything was recorded.
 */
export function recordChange(
  tx: EntityManager,
  task: Task,
  kind: EventKind,
  actor: string,
  mutate: (task: Task) => void = () => undefined,
  extra: JsonObject = {},
): boolean {
  const model = taskModel(tx);
  const before = snapshot(model, task);
  mutate(task);
  const changes = { ...diff(before, snapshot(model, task)), ...extra };
  if (Object.keys(changes).length === 0) return false;
  const now = new Date();
  task.updatedAt = nextUpdatedAt(task.updatedAt, now.getTime());
  recordEvent(tx, task.id, kind, actor, changes, now);
  return true;
}

/** Persists one event of `taskId` (written at flush; the trigger on task_event wakes the subscription listeners). */
export function recordEvent(tx: EntityManager, taskId: string, kind: EventKind, actor: string, changes: JsonObject, at = new Date()): void {
  tx.create(TaskEvent, { taskId, kind, actor, at, changes });
}
