/**
 * The webhook service: managing webhooks (create, change, rotate the secret, delete, redeliver) and reading them and
 * their deliveries. One instance per operation, on the operation's fork; every write is one transaction
 * (TransactionRunner) that loads and locks its entities, changes them and flushes before COMMIT, then tells this
 * instance's delivery worker to look at once. Resolvers only translate arguments and results.
 */
import { randomUUID } from 'node:crypto';
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { TransactionRunner } from '../db/transaction.js';
import type { WebhookConfig } from '../config.js';
import type { CreateWebhookInput, UpdateWebhookInput } from '../generated/schema-types.js';
import { WRITE_SCOPE } from '../auth/authenticator.js';
import { AppError } from '../errors.js';
import { readHead } from '../events/event.repository.js';
import { TaskEvent } from '../events/event.entity.js';
import type { Page } from '../pagination.js';
import { Webhook } from './webhook.entity.js';
import { WebhookDelivery, type DeliveryStatus } from './delivery.entity.js';
import { WebhookRepository, type ListPageArgs } from './webhook.repository.js';
import { newSecret } from './signature.js';
import { parseEventId, parseWebhookId, validateCreate, validateUpdate, type Resolver, type WebhookChanges } from './webhook.validation.js';
import { webhookView, type WebhookView, type WebhookWithSecretView } from './webhook.view.js';

/** What the service needs of the app: the settings, and the delivery worker's doorbell. */
export interface WebhookServiceOptions {
  readonly config: WebhookConfig;
  /** Called after each committed change, so this instance's delivery worker looks for work at once. */
  changed(): void;
  /**
   * May the caller see and change webhooks? They reveal integration endpoints, so with authentication on even
   * reading them needs the write scope.
   */
  readonly mayManage: boolean;
  /** How host names are resolved for the URL check (the system resolver when absent). */
  readonly resolve?: Resolver;
}

export class WebhookService {
  constructor(
    private readonly em: EntityManager,
    private readonly transactions: TransactionRunner,
    private readonly options: WebhookServiceOptions,
  ) {}

  /**
   * Creates a webhook that receives the events committed from now on (its position is the feed's head), and returns
   * it with its secret. Past WEBHOOK_MAX webhooks: BAD_USER_INPUT with `extensions.limit`.
   */
  async create(input: CreateWebhookInput): Promise<WebhookWithSecretView> {
    this.authorize();
    const { config } = this.options;
    const item = await validateCreate(input, config.allowPrivate, this.options.resolve);
    const secret = newSecret();
    const webhook = await this.transactions.run(this.em, async (tx) => {
      const repository = new WebhookRepository(tx);
      await repository.lockCreation();
      const count = await repository.count();
      if (count >= config.max) {
        throw new AppError('BAD_USER_INPUT', `This server keeps at most ${config.max} webhooks (WEBHOOK_MAX): delete one first`, { limit: config.max });
      }
      // Read before anything is written, so this transaction holds no transaction id that would hold the head back.
      const head = await readHead(tx);
      const now = new Date();
      const created = tx.create(Webhook, {
        id: randomUUID(),
        ...item,
        secret,
        positionXid: head.xid.toString(),
        positionId: head.id.toString(),
        createdAt: now,
        updatedAt: now,
      });
      await tx.flush();
      return created;
    });
    this.options.changed();
    return { webhook: webhookView(webhook), secret };
  }

  /**
   * Changes a webhook. `enabled: false` stops it (disabled by a caller: no reason); `enabled: true` on a disabled
   * one resumes it where it stopped: its FAILED feed deliveries go back to PENDING, due now, with a new retry
   * period. A change that changes nothing leaves `updatedAt` as it was.
   */
  async update(id: string, input: UpdateWebhookInput): Promise<WebhookView> {
    this.authorize();
    const webhookId = parseWebhookId(id);
    const changes = await validateUpdate(input, this.options.config.allowPrivate, this.options.resolve);
    const webhook = await this.transactions.run(this.em, async (tx) => {
      const found = await lockWebhook(tx, webhookId);
      const now = new Date();
      const changed = applyChanges(found, changes, now);
      if (changes.enabled === true && changed.has('enabled')) {
        await tx.nativeUpdate(
          WebhookDelivery,
          { webhookId, status: 'FAILED', redelivery: false },
          { status: 'PENDING', retryStartedAt: now, nextAttemptAt: now },
        );
      }
      if (changed.size > 0) found.updatedAt = now;
      await tx.flush();
      return found;
    });
    this.options.changed();
    return webhookView(webhook);
  }

  /**
   * Gives a webhook a new secret and returns it. The old one keeps signing beside it for WEBHOOK_SECRET_OVERLAP_MS
   * (with an overlap of 0, it stops at once).
   */
  async rotateSecret(id: string): Promise<WebhookWithSecretView> {
    this.authorize();
    const webhookId = parseWebhookId(id);
    const overlapMs = this.options.config.secretOverlapMs;
    const secret = newSecret();
    const webhook = await this.transactions.run(this.em, async (tx) => {
      const found = await lockWebhook(tx, webhookId);
      const now = new Date();
      found.previousSecret = overlapMs > 0 ? found.secret : null;
      found.previousSecretExpiresAt = overlapMs > 0 ? new Date(now.getTime() + overlapMs) : null;
      found.secret = secret;
      found.updatedAt = now;
      await tx.flush();
      return found;
    });
    this.options.changed();
    return { webhook: webhookView(webhook), secret };
  }

  /** Deletes a webhook; its delivery records go with it (the foreign key cascades). Returns the id. */
  async delete(id: string): Promise<string> {
    this.authorize();
    const webhookId = parseWebhookId(id);
    const deleted = await this.transactions.run(this.em, (tx) => tx.nativeDelete(Webhook, { id: webhookId }));
    if (deleted === 0) throw AppError.notFound('Webhook', webhookId);
    this.options.changed();
    return webhookId;
  }

  /**
   * Queues one event for the webhook again, as a new delivery outside the feed's order (the worker sends it).
   * NOT_FOUND when the webhook or the event does not exist.
   */
  async redeliver(webhookIdArg: string, eventIdArg: string): Promise<WebhookDelivery> {
    this.authorize();
    const webhookId = parseWebhookId(webhookIdArg, 'webhookId');
    const eventId = parseEventId(eventIdArg);
    const delivery = await this.transactions.run(this.em, async (tx) => {
      // A share lock: the webhook cannot be deleted before the delivery row that points at it commits.
      const webhook = await tx.findOne(Webhook, webhookId, { lockMode: LockMode.PESSIMISTIC_READ });
      if (!webhook) throw AppError.notFound('Webhook', webhookId);
      const event = eventId === undefined ? null : await tx.findOne(TaskEvent, eventId);
      if (!event) throw new AppError('NOT_FOUND', `Event ${eventIdArg} does not exist`, { id: eventIdArg, field: 'eventId' });
      const now = new Date();
      const created = tx.create(WebhookDelivery, {
        id: randomUUID(),
        webhookId,
        eventId: String(event.id),
        redelivery: true,
        status: 'PENDING',
        attempts: 0,
        nextAttemptAt: now,
        retryStartedAt: now,
        createdAt: now,
      });
      await tx.flush();
      return created;
    });
    this.options.changed();
    return delivery;
  }

  /** Webhooks, oldest first. */
  async list(args: ListPageArgs): Promise<Page<WebhookView>> {
    this.authorize();
    const page = await new WebhookRepository(this.em).page(args);
    return { ...page, rows: page.rows.map(webhookView) };
  }

  /** One webhook; null when absent. */
  async get(id: string): Promise<WebhookView | null> {
    this.authorize();
    const found = await this.em.findOne(Webhook, parseWebhookId(id));
    return found ? webhookView(found) : null;
  }

  /** A webhook's deliveries, newest first, optionally only those in `status`; NOT_FOUND when it does not exist. */
  async deliveries(webhookIdArg: string, status: DeliveryStatus | null | undefined, args: ListPageArgs): Promise<Page<WebhookDelivery>> {
    this.authorize();
    const webhookId = parseWebhookId(webhookIdArg, 'webhookId');
    if ((await this.em.count(Webhook, { id: webhookId })) === 0) throw AppError.notFound('Webhook', webhookId);
    return new WebhookRepository(this.em).deliveries(webhookId, status, args);
  }

  /** FORBIDDEN unless the caller may manage webhooks (see {@link WebhookServiceOptions.mayManage}). */
  private authorize(): void {
    if (!this.options.mayManage) {
      throw new AppError('FORBIDDEN', `Managing webhooks needs a token with the ${WRITE_SCOPE} scope`, { scope: WRITE_SCOPE }, { status: 403 });
    }
  }
}

/** Locks webhook `id` FOR UPDATE on the transaction; NOT_FOUND if absent. */
async function lockWebhook(tx: EntityManager, id: string): Promise<Webhook> {
  const webhook = await tx.findOne(Webhook, id, { lockMode: LockMode.PESSIMISTIC_WRITE });
  if (!webhook) throw AppError.notFound('Webhook', id);
  return webhook;
}

/**
 * Assigns what differs from the webhook's current values (an equal value must not make the row dirty, or the
 * version would move for nothing); returns the names of the fields that changed.
 */
function applyChanges(webhook: Webhook, changes: WebhookChanges, now: Date): Set<string> {
  const changed = new Set<string>();
  const set = <K extends 'url' | 'kinds' | 'filterTaskId' | 'filterAssignee' | 'filterTagsAny' | 'description'>(key: K, value: Webhook[K] | undefined) => {
    if (value === undefined || JSON.stringify(webhook[key] ?? null) === JSON.stringify(value ?? null)) return;
    webhook[key] = value;
    changed.add(key);
  };
  set('url', changes.url);
  set('kinds', changes.kinds);
  set('filterTaskId', changes.filterTaskId);
  set('filterAssignee', changes.filterAssignee);
  set('filterTagsAny', changes.filterTagsAny);
  set('description', changes.description);
  if (changes.enabled !== undefined && changes.enabled !== webhook.enabled) {
    webhook.enabled = changes.enabled;
    // Disabled by a caller carries no reason; enabled again, neither a reason nor a time.
    webhook.disabledAt = changes.enabled ? null : now;
    webhook.disabledReason = null;
    changed.add('enabled');
  }
  return changed;
}
