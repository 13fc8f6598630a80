/**
 * Which events a webhook is sent (schema.graphql, `WebhookFilter`): its kinds, and a filter on the task that is
 * read as of delivery, widened by what the event itself sets or clears, so the event that unassigns a task is
 * still sent to the old assignee's webhook.
 */
import type { EventKind } from '../events/event.entity.js';
import type { FeedEvent } from './payload.js';

/** A webhook's selection; empty `kinds` and null filters match every event. */
export interface WebhookSelection {
  kinds: readonly EventKind[];
  filterTaskId: string | null;
  filterAssignee: string | null;
  filterTagsAny: readonly string[] | null;
}

/** The task as it is now; null when it no longer exists. */
export interface TaskNow {
  assignee: string | null;
  tags: readonly string[];
}

/**
 * The values a field takes in an event's `changes`: `{ from, to }` of an update gives both, a plain value (a
 * CREATED event) gives itself; absent gives none.
 */
function valuesOf(changes: Record<string, unknown>, field: string): unknown[] {
  if (!Object.hasOwn(changes, field)) return [];
  const value = changes[field];
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && ('from' in value || 'to' in value)) {
    const { from, to } = value as { from?: unknown; to?: unknown };
    return [from, to];
  }
  return [value];
}

/** Does `event` (of a task that is `task` now) go to a webhook with `selection`? */
export function matchesWebhook(event: FeedEvent, task: TaskNow | null, selection: WebhookSelection): boolean {
  if (selection.kinds.length > 0 && !selection.kinds.includes(event.kind)) return false;
  if (selection.filterTaskId !== null && selection.filterTaskId !== event.taskId) return false;
  if (selection.filterAssignee !== null) {
    const assignees = [task?.assignee, ...valuesOf(event.changes, 'assignee')];
    if (!assignees.includes(selection.filterAssignee)) return false;
  }
  if (selection.filterTagsAny !== null) {
    const tags = new Set<unknown>(task?.tags ?? []);
    for (const value of valuesOf(event.changes, 'tags')) {
      if (Array.isArray(value)) for (const tag of value) tags.add(tag);
    }
    if (!selection.filterTagsAny.some((tag) => tags.has(tag))) return false;
  }
  return true;
}
