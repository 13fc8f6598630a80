/**
 * What callers see of a webhook and of a delivery: plain objects of the API's fields, built field by field, so the
 * signing secrets and the delivery lease (`secret`, `previousSecret`, `leaseOwner`, `leaseExpiresAt`) cannot
 * reach a response by accident.
 */
import type { Webhook as WebhookFields, WebhookDelivery as DeliveryFields } from '../generated/schema-types.js';
import { encodeCursor } from '../pagination.js';
import type { Webhook } from './webhook.entity.js';
import type { WebhookDelivery } from './delivery.entity.js';

/** A webhook as the API shows it. */
export type WebhookView = Required<Omit<WebhookFields, '__typename'>>;

/** A delivery as the API shows it, without its event (resolved on demand). */
export type DeliveryView = Required<Omit<DeliveryFields, '__typename' | 'event'>>;

/** A webhook and its signing secret: the answer of a create or a rotation, the only times the secret is shown. */
export interface WebhookWithSecretView {
  webhook: WebhookView;
  secret: string;
}

/** The feed position of a webhook as a `taskEvents` cursor. */
export function webhookCursor(webhook: Pick<Webhook, 'positionXid' | 'positionId'>): string {
  return encodeCursor([String(webhook.positionXid), String(webhook.positionId)]);
}

export function webhookView(w: Webhook): WebhookView {
  return {
    id: w.id,
    url: w.url,
    kinds: [...w.kinds],
    filter: { taskId: w.filterTaskId ?? null, assignee: w.filterAssignee ?? null, tagsAny: w.filterTagsAny ? [...w.filterTagsAny] : null },
    description: w.description ?? null,
    enabled: w.enabled,
    disabledReason: w.disabledReason ?? null,
    disabledAt: w.disabledAt ?? null,
    cursor: webhookCursor(w),
    previousSecretExpiresAt: w.previousSecretExpiresAt ?? null,
    createdAt: w.createdAt,
    updatedAt: w.updatedAt,
  };
}

export function deliveryView(d: WebhookDelivery): DeliveryView {
  return {
    id: d.id,
    webhookId: d.webhookId,
    eventId: String(d.eventId),
    redelivery: d.redelivery,
    status: d.status,
    attempts: d.attempts,
    lastStatusCode: d.lastStatusCode ?? null,
    lastLatencyMs: d.lastLatencyMs ?? null,
    lastError: d.lastError ?? null,
    lastAttemptAt: d.lastAttemptAt ?? null,
    nextAttemptAt: d.nextAttemptAt ?? null,
    createdAt: d.createdAt,
    deliveredAt: d.deliveredAt ?? null,
  };
}
