/**
 * Reading webhooks and their deliveries page by page (keyset pagination through `em.find`), and the lock that keeps
 * the number of webhooks within WEBHOOK_MAX.
 */
import type { FilterQuery } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { AppError } from '../errors.js';
import { query, sql } from '../db/sql.js';
import { decodeCursor, encodeCursor, pageSize, type Page } from '../pagination.js';
import { Webhook } from './webhook.entity.js';
import { WebhookDelivery, type DeliveryStatus } from './delivery.entity.js';

/** Transaction-level advisory lock key serializing webhook creation (see {@link WebhookRepository.lockCreation}). */
const CREATION_LOCK_KEY = 7_264_911_010;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A row's `(createdAt, id)` as a cursor. */
function rowCursor(row: { createdAt: Date; id: string }): string {
  return encodeCursor([row.createdAt.toISOString(), row.id]);
}

/** Reads an `after` cursor made by {@link rowCursor}; BAD_USER_INPUT (field `after`) for anything else. */
function rowPosition(cursor: string): { createdAt: Date; id: string } {
  const [at, id] = decodeCursor(cursor, 2, 'after');
  const createdAt = typeof at === 'string' ? new Date(at) : new Date(NaN);
  if (Number.isNaN(createdAt.getTime()) || typeof id !== 'string' || !UUID.test(id)) throw AppError.badInput('after is not a cursor of this listing', 'after');
  return { createdAt, id };
}

/** Page arguments of the webhook listings (forwards only). */
export interface ListPageArgs {
  first?: number | null;
  after?: string | null;
}

export class WebhookRepository {
  constructor(private readonly em: EntityManager) {}

  /**
   * Serializes creations until the transaction ends, so a count and the insert after it cannot interleave with
   * another creation's. Hand-written: advisory locks have no ORM form. Transaction-scoped, so it is safe behind
   * PgBouncer in transaction mode (no session state is left on the server connection).
   */
  async lockCreation(): Promise<void> {
    await query(this.em, sql`select pg_advisory_xact_lock(${CREATION_LOCK_KEY})`);
  }

  count(): Promise<number> {
    return this.em.count(Webhook);
  }

  /** Webhooks oldest first, by `(createdAt, id)`. */
  async page(args: ListPageArgs): Promise<Page<Webhook>> {
    const { limit, after } = window(args);
    // Strictly after the cursor's row: a later instant, or the same one and a later id.
    const where: FilterQuery<Webhook> = after ? { $or: [{ createdAt: { $gt: after.createdAt } }, { createdAt: after.createdAt, id: { $gt: after.id } }] } : {};
    const fetched = limit === 0 ? [] : await this.em.find(Webhook, where, { orderBy: { createdAt: 'asc', id: 'asc' }, limit: limit + 1 });
    return toPage(fetched, limit, after !== undefined, () => this.em.count(Webhook));
  }

  /** A webhook's deliveries newest first, by `(createdAt, id)` descending, optionally only those in `status`. */
  async deliveries(webhookId: string, status: DeliveryStatus | null | undefined, args: ListPageArgs): Promise<Page<WebhookDelivery>> {
    const { limit, after } = window(args);
    const matching: FilterQuery<WebhookDelivery> = status ? { webhookId, status } : { webhookId };
    // Strictly before the cursor's row in time: an earlier instant, or the same one and a smaller id.
    const where: FilterQuery<WebhookDelivery> = after
      ? { $and: [matching, { $or: [{ createdAt: { $lt: after.createdAt } }, { createdAt: after.createdAt, id: { $lt: after.id } }] }] }
      : matching;
    const fetched = limit === 0 ? [] : await this.em.find(WebhookDelivery, where, { orderBy: { createdAt: 'desc', id: 'desc' }, limit: limit + 1 });
    return toPage(fetched, limit, after !== undefined, () => this.em.count(WebhookDelivery, matching));
  }
}

function window(args: ListPageArgs): { limit: number; after: { createdAt: Date; id: string } | undefined } {
  return { limit: pageSize(args.first), after: args.after != null ? rowPosition(args.after) : undefined };
}

/** A page of up to `limit` rows from `fetched` (read with one extra row, which says that more follow). */
function toPage<T extends { createdAt: Date; id: string }>(fetched: T[], limit: number, afterCursor: boolean, totalCount: () => Promise<number>): Page<T> {
  const rows = fetched.slice(0, limit);
  return {
    rows,
    cursor: (i) => (i >= 0 && i < rows.length ? rowCursor(rows[i] as T) : null),
    hasNextPage: fetched.length > limit,
    hasPreviousPage: afterCursor,
    totalCount,
  };
}
