/**
 * Webhook rows for tests, written straight into the database (no GraphQL, no URL checks: a test may insert a URL
 * the API would refuse, to see the worker refuse it at delivery), and the reads tests make of them.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { EventKind } from '../../src/events/event.entity.js';
import { newSecret } from '../../src/webhooks/signature.js';

/** A database URL or an open client (then left open). */
export type DbTarget = string | pg.Client;

export interface InsertWebhookOptions {
  url: string;
  /** Empty or absent: every kind. */
  kinds?: EventKind[];
  filter?: { taskId?: string; assignee?: string; tagsAny?: string[] };
  /** Default: a new one (returned). */
  secret?: string;
  description?: string;
  enabled?: boolean;
  /** Default: the feed's settled head, so only events from now on are delivered. */
  position?: { xid: string; id: string };
}

async function withClient<T>(target: DbTarget, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  if (typeof target !== 'string') return fn(target);
  const client = new pg.Client({ connectionString: target });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The feed's settled head (as the server's `readHead` reads it), or the start of the feed. */
export async function feedHead(target: DbTarget): Promise<{ xid: string; id: string }> {
  return withClient(target, async (c) => {
    const { rows } = await c.query<{ xid: string; id: string }>(
      // Ordered by the columns, not by the text aliases (as text, xid 999 sorts after 1171).
      'select e.xid::text as xid, e.id::text as id from task_event e where e.xid < pg_snapshot_xmin(pg_current_snapshot()) order by e.xid desc, e.id desc limit 1',
    );
    return rows[0] ?? { xid: '0', id: '0' };
  });
}

/**
 * Inserts an enabled webhook positioned at the feed's head (or `options.position`); the worker claims it on its
 * next poll (call `app`'s `webhooksChanged` through the API, or wait about a second).
 */
export async function insertWebhook(target: DbTarget, options: InsertWebhookOptions): Promise<{ id: string; secret: string }> {
  const id = randomUUID();
  const secret = options.secret ?? newSecret();
  await withClient(target, async (c) => {
    const position = options.position ?? (await feedHead(c));
    await c.query(
      `insert into webhook (id, url, kinds, filter_task_id, filter_assignee, filter_tags_any, description, enabled, secret,
         position_xid, position_id, created_at, updated_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::xid8, $11::bigint, now(), now())`,
      [
        id,
        options.url,
        options.kinds ?? [],
        options.filter?.taskId ?? null,
        options.filter?.assignee ?? null,
        options.filter?.tagsAny ?? null,
        options.description ?? null,
        options.enabled ?? true,
        secret,
        position.xid,
        position.id,
      ],
    );
  });
  return { id, secret };
}

/** A webhook row as the tests read it (snake_case columns, positions as text). */
export interface WebhookRowOut {
  id: string;
  enabled: boolean;
  disabled_reason: string | null;
  disabled_at: Date | null;
  position_xid: string;
  position_id: string;
  lease_owner: string | null;
  lease_expires_at: Date | null;
  lease_live: boolean;
}

export async function readWebhook(target: DbTarget, id: string): Promise<WebhookRowOut | undefined> {
  return withClient(target, async (c) => {
    const { rows } = await c.query<WebhookRowOut>(
      `select id, enabled, disabled_reason, disabled_at, position_xid::text as position_xid, position_id::text as position_id,
         lease_owner, lease_expires_at, coalesce(lease_expires_at > now(), false) as lease_live from webhook where id = $1`,
      [id],
    );
    return rows[0];
  });
}

/** A delivery row as the tests read it. */
export interface DeliveryRowOut {
  id: string;
  webhook_id: string;
  event_id: string;
  redelivery: boolean;
  status: 'PENDING' | 'DELIVERED' | 'FAILED';
  attempts: number;
  last_status_code: number | null;
  last_latency_ms: number | null;
  last_error: string | null;
  last_attempt_at: Date | null;
  next_attempt_at: Date | null;
  retry_started_at: Date;
  created_at: Date;
  delivered_at: Date | null;
}

/** A webhook's delivery rows, oldest first. */
export async function readDeliveries(target: DbTarget, webhookId: string): Promise<DeliveryRowOut[]> {
  return withClient(target, async (c) => {
    const { rows } = await c.query<DeliveryRowOut>(
      `select id, webhook_id, event_id::text as event_id, redelivery, status::text as status, attempts, last_status_code, last_latency_ms,
         last_error, last_attempt_at, next_attempt_at, retry_started_at, created_at, delivered_at
       from webhook_delivery where webhook_id = $1 order by created_at, event_id`,
      [webhookId],
    );
    return rows;
  });
}

/**
 * Re-enables a webhook as the management API does: enabled again, its reason cleared, and its FAILED feed delivery
 * due now with a new retry period.
 */
export async function reenableWebhook(target: DbTarget, id: string): Promise<void> {
  await withClient(target, async (c) => {
    await c.query('begin');
    await c.query(`update webhook set enabled = true, disabled_reason = null, disabled_at = null, updated_at = now(), version = version + 1 where id = $1`, [id]);
    await c.query(
      `update webhook_delivery set status = 'PENDING', retry_started_at = now(), next_attempt_at = now() where webhook_id = $1 and status = 'FAILED' and not redelivery`,
      [id],
    );
    await c.query('commit');
  });
}

/** Queues a redelivery of `eventId` as `redeliverWebhookEvent` does; returns the new delivery's id. */
export async function insertRedelivery(target: DbTarget, webhookId: string, eventId: string): Promise<string> {
  const id = randomUUID();
  await withClient(target, (c) =>
    c.query(
      `insert into webhook_delivery (id, webhook_id, event_id, redelivery, status, attempts, retry_started_at, next_attempt_at, created_at)
       values ($1, $2, $3::bigint, true, 'PENDING', 0, now(), now(), now())`,
      [id, webhookId, eventId],
    ),
  );
  return id;
}
