/**
 * What a webhook request carries: the event as JSON, with the `taskEvents` cursor of its place in the change feed
 * (docs/webhooks.md, "Payload"). The body is serialized once and signed as sent.
 */
import { encodeCursor } from '../pagination.js';
import type { EventKind } from '../events/event.entity.js';
import type { JsonObject } from '../tasks/task.entity.js';

/** An event as the worker reads it from the feed (ids as strings: they are bigints). */
export interface FeedEvent {
  id: string;
  xid: string;
  taskId: string;
  kind: EventKind;
  actor: string;
  at: Date;
  changes: JsonObject;
}

/** The JSON body of a webhook request. */
export interface WebhookPayload {
  id: string;
  kind: EventKind;
  taskId: string;
  at: string;
  actor: string;
  changes: JsonObject;
  cursor: string;
}

/** The payload of `event`; its `cursor` is the one `taskEvents` gives the same event. */
export function webhookPayload(event: FeedEvent): WebhookPayload {
  return {
    id: event.id,
    kind: event.kind,
    taskId: event.taskId,
    at: event.at.toISOString(),
    actor: event.actor,
    changes: event.changes,
    cursor: encodeCursor([event.xid, event.id]),
  };
}

/** The request body: the payload's JSON text, exactly the bytes that are signed. */
export function payloadBody(event: FeedEvent): string {
  return JSON.stringify(webhookPayload(event));
}
