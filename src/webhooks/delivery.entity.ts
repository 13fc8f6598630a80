/**
 * `webhook_delivery`: one event's delivery to one webhook, with the outcome of its last attempt. The feed's own
 * deliveries are unique per (webhook, event); a redelivery asked for by a caller is a row of its own.
 */
import { defineEntity, type Opt } from '@mikro-orm/core';
import { WebhookSchema } from './webhook.entity.js';

export const DELIVERY_STATUSES = ['PENDING', 'DELIVERED', 'FAILED'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export class WebhookDelivery {
  /** Sent as the `X-Webhook-Delivery` header. */
  id!: string;
  webhookId!: string;
  /** The task event's id (a bigint, kept as a string). Events are never deleted, so no foreign key is needed. */
  eventId!: string;
  redelivery: Opt<boolean> = false;
  status: Opt<DeliveryStatus> = 'PENDING';
  attempts: Opt<number> = 0;
  lastStatusCode?: number | null;
  lastLatencyMs?: number | null;
  lastError?: string | null;
  lastAttemptAt?: Date | null;
  nextAttemptAt?: Date | null;
  /** When this run of attempts began (queued, or re-enabled after giving up): the retry period counts from it. */
  retryStartedAt!: Date;
  createdAt!: Date;
  deliveredAt?: Date | null;
}

export const WebhookDeliverySchema = defineEntity({
  class: WebhookDelivery,
  tableName: 'webhook_delivery',
  checks: [{ name: 'webhook_delivery_attempts_check', expression: 'attempts >= 0' }],
  indexes: [
    { name: 'webhook_delivery_webhook_id_created_at_id_idx', properties: ['webhookId', 'createdAt', 'id'] },
    {
      name: 'webhook_delivery_pending_idx',
      expression: `create index "webhook_delivery_pending_idx" on "webhook_delivery" ("webhook_id", "next_attempt_at") where "status" = 'PENDING'`,
    },
    // The feed delivers each event to a webhook once (a second instance that lost its lease cannot add another).
    {
      name: 'webhook_delivery_webhook_id_event_id_key',
      expression: `create unique index "webhook_delivery_webhook_id_event_id_key" on "webhook_delivery" ("webhook_id", "event_id") where not "redelivery"`,
    },
  ],
  properties: (p) => ({
    id: p.uuid().primary(),
    // Deleting a webhook deletes its delivery records.
    webhookId: p.manyToOne(WebhookSchema).mapToPk().fieldName('webhook_id').deleteRule('cascade'),
    eventId: p.bigint('string'),
    redelivery: p.boolean().default(false),
    status: p.enum(DELIVERY_STATUSES as unknown as string[]).nativeEnumName('webhook_delivery_status').default('PENDING'),
    attempts: p.integer().default(0),
    lastStatusCode: p.integer().nullable(),
    lastLatencyMs: p.integer().nullable(),
    lastError: p.text().nullable(),
    lastAttemptAt: p.datetime(3).nullable(),
    nextAttemptAt: p.datetime(3).nullable(),
    retryStartedAt: p.datetime(3),
    createdAt: p.datetime(3),
    deliveredAt: p.datetime(3).nullable(),
  }),
});
