/**
 * `webhook`: an HTTP endpoint told about task events, with its place in the change feed and its delivery lease.
 *
 * `position_xid, position_id` is the feed position of the last event handled (delivered, or not matching): the
 * worker reads on after it. `lease_owner` and `lease_expires_at` say which instance delivers it now; a lease that
 * is not renewed ends by itself, so an instance that dies hands its webhooks over without anyone releasing them.
 */
import { defineEntity, type Opt } from '@mikro-orm/core';
import type { EventKind } from '../events/event.entity.js';
import { TextArrayType } from '../db/text-array.type.js';

export class Webhook {
  id!: string;
  url!: string;
  /** Empty: every kind. */
  kinds: Opt<EventKind[]> = [];
  filterTaskId?: string | null;
  filterAssignee?: string | null;
  filterTagsAny?: string[] | null;
  description?: string | null;
  enabled: Opt<boolean> = true;
  disabledReason?: string | null;
  disabledAt?: Date | null;
  /** The HMAC-SHA256 key; kept in the database because every delivery signs with it. */
  secret!: string;
  /** The secret before the last rotation, still signing until `previousSecretExpiresAt`. */
  previousSecret?: string | null;
  previousSecretExpiresAt?: Date | null;
  /** xid8 of the last event handled, as a string. */
  positionXid!: string;
  /** id (bigint) of the last event handled, as a string. */
  positionId!: string;
  leaseOwner?: string | null;
  leaseExpiresAt?: Date | null;
  createdAt!: Date;
  updatedAt!: Date;
  version: Opt<number> = 1;
}

export const WebhookSchema = defineEntity({
  class: Webhook,
  tableName: 'webhook',
  indexes: [
    { name: 'webhook_created_at_id_idx', properties: ['createdAt', 'id'] },
    // The worker claims enabled webhooks whose lease is free or has ended.
    { name: 'webhook_lease_idx', expression: 'create index "webhook_lease_idx" on "webhook" ("lease_expires_at") where "enabled"' },
  ],
  properties: (p) => ({
    id: p.uuid().primary(),
    url: p.string().length(2048),
    kinds: p.type(TextArrayType).columnType('text[]').defaultRaw(`'{}'`),
    filterTaskId: p.uuid().nullable(),
    filterAssignee: p.string().length(255).nullable(),
    filterTagsAny: p.type(TextArrayType).columnType('text[]').nullable(),
    description: p.string().length(500).nullable(),
    enabled: p.boolean().default(true),
    disabledReason: p.text().nullable(),
    disabledAt: p.datetime(3).nullable(),
    secret: p.string().length(255),
    previousSecret: p.string().length(255).nullable(),
    previousSecretExpiresAt: p.datetime(3).nullable(),
    positionXid: p.string().columnType('xid8'),
    positionId: p.bigint('string'),
    leaseOwner: p.string().length(255).nullable(),
    leaseExpiresAt: p.datetime(3).nullable(),
    createdAt: p.datetime(3),
    updatedAt: p.datetime(3),
    version: p.integer().version().default(1),
  }),
});
