/**
 * The delivery worker's statements (docs/webhooks.md). Hand-written where the ORM cannot say them: leases taken with
 * `FOR UPDATE SKIP LOCKED` and timed by the database's clock, the change feed's snapshot horizon, and writes fenced
 * by the lease, each one statement (so one implicit transaction: nothing is held open across an HTTP request, and
 * PgBouncer's transaction pooling is fine). Every statement runs through `query` on a fork of the root
 * EntityManager, so no pooled connection is held between statements.
 *
 * The fence: a write that moves a webhook's position or records an attempt applies only while this instance holds
 * the webhook's lease (`lease_owner = me and lease_expires_at > now()`); no row back means the lease is lost.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { limitClause, query, raw, sql, type Sql } from '../db/sql.js';
import type { EventKind } from '../events/event.entity.js';
import type { FeedPosition } from '../events/feed.position.js';
import type { JsonObject } from '../tasks/task.entity.js';
import { WebhookDelivery, type DeliveryStatus } from './delivery.entity.js';
import type { TaskNow } from './matching.js';
import type { FeedEvent } from './payload.js';

/** The feed's horizon, as src/events/event.repository.ts states it: events of transactions older than every running one. */
const SETTLED = raw('e.xid < pg_snapshot_xmin(pg_current_snapshot())');

/** A millisecond count as an interval (bound as a number: the statement text stays the same). */
const ms = (n: number): Sql => sql`(${Math.round(n)}::bigint * interval '1 millisecond')`;

/** What the worker needs of a webhook it leases. */
export interface WebhookRow {
  id: string;
  url: string;
  kinds: EventKind[];
  filterTaskId: string | null;
  filterAssignee: string | null;
  filterTagsAny: string[] | null;
  secret: string;
  previousSecret: string | null;
  previousSecretExpiresAt: Date | null;
  position: FeedPosition;
}

/** A delivery as the worker handles it. */
export interface DeliveryRow {
  id: string;
  webhookId: string;
  eventId: string;
  redelivery: boolean;
  status: DeliveryStatus;
  attempts: number;
  retryStartedAt: Date;
  /** How long until the next attempt is due by the database's clock (0: due now). */
  dueInMs: number;
  /** False for a feed delivery not written yet: its first attempt writes it, with the outcome. */
  recorded?: boolean;
}

/** A feed event with the task as it is now (for the filter), and the webhook's feed delivery of it, if recorded. */
export interface PageEvent extends FeedEvent {
  task: TaskNow | null;
  delivery: DeliveryRow | null;
}

type Row = Record<string, unknown>;

/**
 * A timestamp column as epoch milliseconds: the ORM's pg types keep timestamps as PostgreSQL's text, which
 * `Date` does not reliably parse; a float8 of milliseconds is exact for timestamptz(3).
 */
const epochMs = (column: string, alias: string): string => `(extract(epoch from ${column}) * 1000)::float8 as ${alias}`;

function toDate(value: unknown): Date {
  return new Date(Number(value));
}

const WEBHOOK_COLUMNS = raw(`id, url, kinds, filter_task_id, filter_assignee, filter_tags_any, secret, previous_secret,
  ${epochMs('previous_secret_expires_at', 'previous_secret_expires_at')}, position_xid::text as position_xid, position_id::text as position_id`);

function toWebhook(r: Row): WebhookRow {
  return {
    id: String(r.id),
    url: String(r.url),
    kinds: (r.kinds as EventKind[] | null) ?? [],
    filterTaskId: (r.filter_task_id as string | null) ?? null,
    filterAssignee: (r.filter_assignee as string | null) ?? null,
    filterTagsAny: (r.filter_tags_any as string[] | null) ?? null,
    secret: String(r.secret),
    previousSecret: (r.previous_secret as string | null) ?? null,
    previousSecretExpiresAt: r.previous_secret_expires_at == null ? null : toDate(r.previous_secret_expires_at),
    position: { xid: BigInt(String(r.position_xid)), id: BigInt(String(r.position_id)) },
  };
}

const DELIVERY_COLUMNS = `id, webhook_id, event_id::text as event_id, redelivery, status::text as status, attempts, ${epochMs('retry_started_at', 'retry_started_at')},
  greatest(0, coalesce(extract(epoch from next_attempt_at - now()) * 1000, 0))::float8 as due_in_ms`;

function toDelivery(r: Row): DeliveryRow {
  return {
    id: String(r.id),
    webhookId: String(r.webhook_id),
    eventId: String(r.event_id),
    redelivery: Boolean(r.redelivery),
    status: r.status as DeliveryStatus,
    attempts: Number(r.attempts),
    retryStartedAt: toDate(r.retry_started_at),
    dueInMs: Number(r.due_in_ms),
  };
}

function toEvent(r: Row): PageEvent {
  return {
    id: String(r.id),
    xid: String(r.xid),
    taskId: String(r.task_id),
    kind: r.kind as EventKind,
    actor: String(r.actor),
    at: toDate(r.at),
    changes: (r.changes as JsonObject | null) ?? {},
    task: r.task_exists ? { assignee: (r.assignee as string | null) ?? null, tags: (r.tags as string[] | null) ?? [] } : null,
    delivery: r.delivery_id == null ? null : toDelivery({ ...r, id: r.delivery_id, event_id: r.id, webhook_id: r.delivery_webhook_id, status: r.delivery_status }),
  };
}

/** This instance's hold on its webhooks. */
export interface LeaseHolder {
  owner: string;
  leaseMs: number;
}

/**
 * Extends the leases this instance still holds on enabled webhooks and returns those webhooks, fresh (a changed
 * url, filter or secret is seen here). A webhook missing from the answer is lost: disabled, deleted, or its lease
 * ran out. A plain UPDATE (no SKIP LOCKED): it waits out the short fenced writes on its own rows instead of
 * mistaking them for a loss.
 */
export async function renewLeases(em: EntityManager, holder: LeaseHolder): Promise<WebhookRow[]> {
  const rows = await query(em, sql`update webhook set lease_expires_at = now() + ${ms(holder.leaseMs)}
    where lease_owner = ${holder.owner} and lease_expires_at > now() and enabled
    returning ${WEBHOOK_COLUMNS}`);
  return rows.map(toWebhook);
}

/**
 * Takes the enabled webhooks whose lease is free or has run out, in one short statement: rows another instance is
 * claiming at the same moment are skipped (SKIP LOCKED), not waited for, so two instances never take the same one.
 */
export async function claimLeases(em: EntityManager, holder: LeaseHolder, limit: number): Promise<WebhookRow[]> {
  const rows = await query(em, sql`update webhook set lease_owner = ${holder.owner}, lease_expires_at = now() + ${ms(holder.leaseMs)}
    where id in (select id from webhook where enabled and (lease_expires_at is null or lease_expires_at <= now())
                 order by id ${raw(limitClause(limit))} for update skip locked)
    returning ${WEBHOOK_COLUMNS}`);
  return rows.map(toWebhook);
}

/** Ends this instance's leases now (a graceful stop), so another instance takes the webhooks over at once. */
export async function releaseLeases(em: EntityManager, owner: string, ids?: readonly string[]): Promise<void> {
  // The database's clock, like every lease time: instances' clocks may differ.
  const only = ids ? sql` and id = any(${[...ids]}::uuid[])` : raw('');
  await query(em, sql`update webhook set lease_expires_at = now() where lease_owner = ${owner} and lease_expires_at > now()${only}`);
}

/**
 * Up to `limit` events after `position` in feed order, with the task as it is now (for the filter; null once
 * deleted) and the webhook's feed delivery of each one if there is one (a retry's schedule, or a crash's leftover),
 * and whether committed events after them are held back by a running older transaction (then the reader looks
 * again soon). Unsettled rows sort after settled ones (a larger xid), so the settled ones are a prefix.
 */
export async function readFeedPage(em: EntityManager, webhookId: string, position: FeedPosition, limit: number): Promise<{ events: PageEvent[]; heldBack: boolean }> {
  const rows = await query<Row & { settled: boolean }>(em, sql`select e.id::text as id, e.xid::text as xid, e.task_id, e.kind::text as kind,
      e.actor, ${raw(epochMs('e.at', 'at'))}, e.changes, ${SETTLED} as settled, t.id is not null as task_exists, t.assignee, t.tags,
      d.id as delivery_id, d.webhook_id as delivery_webhook_id, d.redelivery, d.status::text as delivery_status, d.attempts,
      ${raw(epochMs('d.retry_started_at', 'retry_started_at'))},
      greatest(0, coalesce(extract(epoch from d.next_attempt_at - now()) * 1000, 0))::float8 as due_in_ms
    from task_event e left join task t on t.id = e.task_id
      left join webhook_delivery d on d.webhook_id = ${webhookId} and d.event_id = e.id and not d.redelivery
    where (e.xid, e.id) > (${position.xid.toString()}::xid8, ${position.id.toString()}::bigint)
    order by e.xid, e.id ${raw(limitClause(limit))}`);
  const settled = rows.filter((r) => r.settled);
  return { events: settled.map(toEvent), heldBack: settled.length < rows.length };
}

/**
 * The feed's delivery of `eventId` to the webhook, written PENDING when its first attempt failed (the failure is
 * then recorded on it), or the one there is if another writer made it. One statement: the insert is fenced, and a
 * row another writer made is read back. Undefined when there is none and the lease is lost.
 */
export async function ensureDelivery(em: EntityManager, owner: string, id: string, webhookId: string, eventId: string): Promise<DeliveryRow | undefined> {
  const [row] = await query(em, sql`with ins as (
      insert into webhook_delivery (id, webhook_id, event_id, redelivery, status, attempts, retry_started_at, next_attempt_at, created_at)
      select ${id}::uuid, w.id, ${eventId}::bigint, false, 'PENDING', 0, now(), now(), now() from webhook w
       where w.id = ${webhookId} and w.lease_owner = ${owner} and w.lease_expires_at > now()
      on conflict (webhook_id, event_id) where not redelivery do nothing
      returning *)
    select ${raw(DELIVERY_COLUMNS)} from ins
    union all
    select ${raw(DELIVERY_COLUMNS)} from webhook_delivery where webhook_id = ${webhookId} and event_id = ${eventId}::bigint and not redelivery
    limit 1`);
  return row && toDelivery(row);
}

/**
 * Starts a new run of attempts for a feed delivery found FAILED while its webhook is enabled (re-enabled by a
 * writer that left it as it was): due now, the retry period counted from now. Fenced.
 */
export async function restartFailed(em: EntityManager, owner: string, deliveryId: string): Promise<boolean> {
  const rows = await query(em, sql`update webhook_delivery d set status = 'PENDING', retry_started_at = now(), next_attempt_at = now()
    from webhook w where d.id = ${deliveryId} and d.status = 'FAILED' and w.id = d.webhook_id and w.lease_owner = ${owner} and w.lease_expires_at > now()
    returning d.id`);
  return rows.length > 0;
}

/** Moves the webhook's position on (past events that did not match, or already delivered). False: the lease is lost. */
export async function movePosition(em: EntityManager, owner: string, webhookId: string, to: FeedPosition): Promise<boolean> {
  const rows = await query(em, sql`update webhook set position_xid = ${to.xid.toString()}::xid8, position_id = ${to.id.toString()}::bigint
    where id = ${webhookId} and lease_owner = ${owner} and lease_expires_at > now() returning id`);
  return rows.length > 0;
}

/** What an attempt left to record. */
export interface AttemptRecord {
  statusCode: number | null;
  latencyMs: number;
  startedAt: Date;
}

/**
 * Marks a delivery DELIVERED and, for the feed's own, moves the webhook's position to its event, in one statement
 * (one transaction): the position never passes an event that is not recorded delivered, and a delivery is never
 * recorded without its position. False: the lease is lost and nothing was written.
 */
export async function recordDelivered(
  em: EntityManager,
  owner: string,
  delivery: Pick<DeliveryRow, 'id' | 'webhookId' | 'eventId' | 'recorded'>,
  attempt: AttemptRecord,
  position: FeedPosition | undefined,
): Promise<boolean> {
  const move = position
    ? sql`position_xid = ${position.xid.toString()}::xid8, position_id = ${position.id.toString()}::bigint`
    : raw('position_xid = position_xid');
  const done = sql`last_status_code = ${attempt.statusCode}, last_latency_ms = ${attempt.latencyMs}, last_error = null,
        last_attempt_at = ${attempt.startedAt}, next_attempt_at = null, delivered_at = now()`;
  // A first attempt that succeeded has no row yet: it is written now, DELIVERED, in the same statement.
  const mark = delivery.recorded === false
    ? sql`insert into webhook_delivery (id, webhook_id, event_id, redelivery, status, attempts, retry_started_at, created_at, last_status_code,
          last_latency_ms, last_attempt_at, delivered_at)
        select ${delivery.id}::uuid, w.id, ${delivery.eventId}::bigint, false, 'DELIVERED', 1, ${attempt.startedAt}, ${attempt.startedAt},
          ${attempt.statusCode}::int, ${attempt.latencyMs}::int, ${attempt.startedAt}, now() from w
        on conflict (webhook_id, event_id) where not redelivery do update set status = 'DELIVERED', attempts = webhook_delivery.attempts + 1, ${done}
        returning id`
    : sql`update webhook_delivery set status = 'DELIVERED', attempts = attempts + 1, ${done}
        where id = ${delivery.id} and exists (select 1 from w) returning id`;
  const [row] = await query<{ fenced: number }>(em, sql`with w as (
      update webhook set ${move} where id = ${delivery.webhookId} and lease_owner = ${owner} and lease_expires_at > now() returning id),
    d as (${mark})
    select (select count(*) from w)::int as fenced, (select count(*) from d)::int as marked`);
  return Number(row?.fenced ?? 0) > 0;
}

/** A failed attempt's record: the next attempt's wait, and what to say if the retry period is over. */
export interface FailureRecord extends AttemptRecord {
  error: string;
  retryDelayMs: number;
  retryForMs: number;
  /** The webhook's `disabledReason` if this failure ends the retry period of a feed delivery. */
  disabledReason: string;
}

/** Where a delivery stands after a failed attempt was recorded. */
export interface FailureOutcome {
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date | null;
  /** Milliseconds until the next attempt by the database's clock (0 once FAILED). */
  dueInMs: number;
  /** The webhook was disabled by this failure (the feed's delivery ran out of retry period). */
  disabled: boolean;
}

/**
 * Records a failed attempt: attempts + 1, the answer, and the next attempt's time; or, once the retry period has
 * run out, FAILED, and for the feed's own delivery the webhook disabled with a reason and its lease released. One
 * statement (one transaction), fenced; undefined when the lease is lost.
 */
export async function recordFailure(em: EntityManager, owner: string, deliveryId: string, f: FailureRecord): Promise<FailureOutcome | undefined> {
  const over = sql`now() - d.retry_started_at >= ${ms(f.retryForMs)}`;
  const [row] = await query(em, sql`with d as (
      update webhook_delivery d set attempts = d.attempts + 1, last_status_code = ${f.statusCode}, last_latency_ms = ${f.latencyMs},
        last_error = ${f.error}, last_attempt_at = ${f.startedAt},
        status = (case when ${over} then 'FAILED' else 'PENDING' end)::webhook_delivery_status,
        next_attempt_at = case when ${over} then null else now() + ${ms(f.retryDelayMs)} end
      from webhook w
      where d.id = ${deliveryId} and w.id = d.webhook_id and w.lease_owner = ${owner} and w.lease_expires_at > now()
      returning d.webhook_id, d.redelivery, d.status::text as status, d.attempts, d.next_attempt_at),
    off as (
      update webhook set enabled = false, disabled_at = now(), disabled_reason = ${f.disabledReason}, lease_owner = null,
        lease_expires_at = null, updated_at = now(), version = version + 1
      where id = (select webhook_id from d where status = 'FAILED' and not redelivery) returning id)
    select d.status, d.attempts, ${raw(epochMs('d.next_attempt_at', 'next_attempt_at'))}, (select count(*) from off)::int as disabled,
      greatest(0, coalesce(extract(epoch from d.next_attempt_at - now()) * 1000, 0))::float8 as due_in_ms from d`);
  if (!row) return undefined;
  return {
    status: row.status as DeliveryStatus,
    attempts: Number(row.attempts),
    nextAttemptAt: row.next_attempt_at == null ? null : toDate(row.next_attempt_at),
    dueInMs: Number(row.due_in_ms),
    disabled: Number(row.disabled) > 0,
  };
}

/** A redelivery that is due, with its event. */
export interface DueRedelivery {
  delivery: DeliveryRow;
  event: FeedEvent;
}

/**
 * Redeliveries that are due, of the enabled webhooks this instance leases, oldest due first: one statement for all
 * of them (the poll's), rather than one per webhook.
 */
export async function dueRedeliveries(em: EntityManager, owner: string, limit: number): Promise<DueRedelivery[]> {
  const rows = await query(em, sql`select d.id, d.webhook_id, d.event_id::text as event_id, d.redelivery, d.status::text as status, d.attempts,
      ${raw(epochMs('d.retry_started_at', 'retry_started_at'))}, 0::float8 as due_in_ms, e.xid::text as xid, e.task_id, e.kind::text as kind,
      e.actor, ${raw(epochMs('e.at', 'at'))}, e.changes
    from webhook_delivery d join webhook w on w.id = d.webhook_id join task_event e on e.id = d.event_id
    where d.redelivery and d.status = 'PENDING' and d.next_attempt_at <= now()
      and w.enabled and w.lease_owner = ${owner} and w.lease_expires_at > now()
    order by d.next_attempt_at, d.id ${raw(limitClause(limit))}`);
  return rows.map((r) => ({ delivery: toDelivery(r), event: toEvent({ ...r, id: r.event_id, task_exists: false }) }));
}

/**
 * Deletes finished deliveries (DELIVERED, FAILED) older than the retention, a bounded batch at a time. Through the
 * ORM: a plain condition. The JavaScript clock is fine for a retention of minutes to days.
 */
export async function deleteOldDeliveries(em: EntityManager, retentionMs: number, batch: number): Promise<number> {
  const before = new Date(Date.now() - retentionMs);
  const old = await em.find(WebhookDelivery, { status: { $ne: 'PENDING' }, createdAt: { $lt: before } }, { fields: ['id'], limit: batch });
  if (old.length === 0) return 0;
  return em.nativeDelete(WebhookDelivery, { id: { $in: old.map((d) => d.id) } });
}

/** One webhook's backlog, for the metrics. */
export interface BacklogRow {
  webhookId: string;
  /** Settled events after its position, counted up to the cap. */
  backlog: number;
  /** Seconds since the first settled event after its position was written; 0 when there is none. */
  oldestAgeSeconds: number;
}

/**
 * Every webhook's backlog in one statement, read at scrape time: each count stops at `cap` (an index range scan
 * of at most `cap` entries), and the oldest event is the first one after the position.
 */
export async function readBacklog(em: EntityManager, cap: number, maxWebhooks: number): Promise<BacklogRow[]> {
  const after = raw('(e.xid, e.id) > (w.position_xid, w.position_id)');
  const rows = await query(em, sql`select w.id,
      (select count(*) from (select 1 from task_event e where ${after} and ${SETTLED} ${raw(limitClause(cap))}) b)::int as backlog,
      coalesce((select extract(epoch from now() - e.at) from task_event e where ${after} and ${SETTLED} order by e.xid, e.id limit 1), 0)::float8 as oldest
    from webhook w order by w.id ${raw(limitClause(maxWebhooks))}`);
  return rows.map((r) => ({ webhookId: String(r.id), backlog: Number(r.backlog), oldestAgeSeconds: Math.max(0, Number(r.oldest)) }));
}
