/**
 * One leased webhook's deliveries, one request at a time: the feed's matching events in feed order (an event that
 * fails is retried, with backoff, while the later ones wait), and redeliveries that are due, outside that order.
 * The loop stops at once when a fenced write finds the lease lost, when the retry period runs out (the webhook is
 * then disabled), or when the worker stops it.
 */
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from '../logger.js';
import type { FeedPosition } from '../events/feed.position.js';
import { retryDelayMs } from './backoff.js';
import { matchesWebhook } from './matching.js';
import { payloadBody, type FeedEvent } from './payload.js';
import type { AttemptOutcome, AttemptResult, WebhookSender } from './sender.js';
import {
  ensureDelivery,
  movePosition,
  readFeedPage,
  recordDelivered,
  recordFailure,
  restartFailed,
  type DeliveryRow,
  type DueRedelivery,
  type WebhookRow,
} from './delivery.repository.js';

/** What a loop needs from its worker. */
export interface LoopContext {
  root: EntityManager;
  owner: string;
  sender: WebhookSender;
  log: Logger;
  retryMinMs: number;
  retryMaxMs: number;
  retryForMs: number;
  pageSize: number;
  /** Every attempt's outcome and duration (metrics). */
  onAttempt(outcome: AttemptOutcome, seconds: number): void;
  /** The retry period ran out and the webhook was disabled (metrics). */
  onDisabled(webhookId: string): void;
  /** A database error: how long to wait before going on. */
  errorDelayMs: number;
}

/** Why a loop ended. */
export type LoopEnd = 'stopped' | 'lost' | 'disabled';

/** While committed events wait behind a running older transaction, read again after 5 ms, doubling to 100 ms (as the hub does). */
const HELD_BACK_FIRST_MS = 5;
const HELD_BACK_MAX_MS = 100;

/** A wait's end: woken (a notification, a redelivery, a stop), or its time came. */
type Sleep = { promise: Promise<void>; wake: () => void };

/** Thrown inside the loop when a fenced write finds the lease lost. */
class LeaseLost extends Error {}
/** Thrown inside the loop when this failure disabled the webhook. */
class Disabled extends Error {}
/** Thrown inside the loop when its request was cut by the emergency path. */
class Aborted extends Error {}

export class DeliveryLoop {
  private webhook: WebhookRow;
  private stopped = false;
  private ended: LoopEnd | undefined;
  private sleep: Sleep | undefined;
  /** The loop waits for a retry: feed notifications do not wake it (the head event still waits). */
  private waitingRetry = false;
  private feedChanged = true;
  private heldBackDelay = HELD_BACK_FIRST_MS;
  private readonly redeliveries = new Map<string, DueRedelivery>();
  /** The redelivery being sent now, and the attempts recorded of each one sent (to tell a stale poll's rows). */
  private sending: string | undefined;
  private readonly redeliveryAttempts = new Map<string, number>();
  private attempting = false;
  /** The last step failed on the database (its warning is logged once until a step succeeds). */
  private failing = false;
  /** Resolves with why the loop ended. */
  readonly done: Promise<LoopEnd>;

  constructor(
    webhook: WebhookRow,
    private readonly ctx: LoopContext,
  ) {
    this.webhook = webhook;
    this.done = this.run();
  }

  get id(): string {
    return this.webhook.id;
  }

  /** Stopping or ended: no new attempt starts. */
  get stopping(): boolean {
    return this.stopped;
  }

  /** A request of this loop is on the wire. */
  get busy(): boolean {
    return this.attempting;
  }

  /** Takes the webhook's fresh row (url, filter, secrets); the position stays this loop's own. */
  update(row: WebhookRow): void {
    const changed = row.url !== this.webhook.url || row.secret !== this.webhook.secret || row.kinds.join() !== this.webhook.kinds.join() ||
      row.filterTaskId !== this.webhook.filterTaskId || row.filterAssignee !== this.webhook.filterAssignee ||
      (row.filterTagsAny ?? []).join() !== (this.webhook.filterTagsAny ?? []).join();
    this.webhook = { ...row, position: this.webhook.position };
    // A new url or filter may change what is due: look again (a retry's time is re-read from its row).
    if (changed) this.wakeNow();
  }

  /** New events may be in the feed: read on, unless the loop waits for a retry of an earlier event. */
  wakeFeed(): void {
    this.feedChanged = true;
    if (!this.waitingRetry) this.sleep?.wake();
  }

  /** Looks at everything again now (a redelivery queued, a change to the webhook). */
  wakeNow(): void {
    this.feedChanged = true;
    this.sleep?.wake();
  }

  /** Queues a due redelivery; sent before the next feed attempt. */
  redeliver(due: DueRedelivery): void {
    const { id, attempts } = due.delivery;
    // A poll's read from before this loop recorded its last attempt would send it twice.
    if (this.redeliveries.has(id) || this.sending === id || attempts < (this.redeliveryAttempts.get(id) ?? 0)) return;
    this.redeliveries.set(due.delivery.id, due);
    this.wakeNow();
  }

  /** Asks the loop to end after the attempt in flight (if any) is recorded; resolves with how it ended. */
  stop(): Promise<LoopEnd> {
    this.stopped = true;
    this.sleep?.wake();
    return this.done;
  }

  private async run(): Promise<LoopEnd> {
    while (!this.stopped) {
      let waitMs: number | undefined;
      try {
        await this.sendRedeliveries();
        if (this.stopped) break;
        waitMs = await this.step();
        this.failing = false;
      } catch (err) {
        if (err instanceof LeaseLost) return (this.ended = 'lost');
        if (err instanceof Disabled) return (this.ended = 'disabled');
        if (err instanceof Aborted) return (this.ended = 'stopped');
        // Once per outage, not once a second: the database being down is reported elsewhere (readiness, breaker).
        if (!this.stopped && !this.failing) this.ctx.log.warn({ err, webhookId: this.webhook.id }, 'webhook delivery: database error; trying again every second');
        this.failing = true;
        waitMs = this.ctx.errorDelayMs;
        this.waitingRetry = true;
      }
      if (waitMs === 0 || this.stopped) continue;
      await this.wait(waitMs);
      this.waitingRetry = false;
    }
    return (this.ended ??= 'stopped');
  }

  /** Waits `ms` (undefined: until woken), or less if woken. */
  private async wait(ms: number | undefined): Promise<void> {
    if (this.redeliveries.size > 0) return;
    if (!this.waitingRetry && this.feedChanged) return;
    let wake!: () => void;
    const promise = new Promise<void>((resolve) => (wake = resolve));
    // Unref'd: a retry due in an hour must not keep a process alive that is otherwise done.
    const timer = ms === undefined ? undefined : setTimeout(wake, ms);
    timer?.unref();
    this.sleep = { promise, wake };
    try {
      await promise;
    } finally {
      clearTimeout(timer);
      this.sleep = undefined;
    }
  }

  /**
   * Reads a page after the position and handles it in order. Returns how long to wait before the next step: 0 to go
   * on at once, a time for a retry or a held-back feed, undefined to wait for a notification.
   */
  private async step(): Promise<number | undefined> {
    const { root, owner, pageSize } = this.ctx;
    const webhook = this.webhook;
    this.feedChanged = false;
    const { events, heldBack } = await readFeedPage(root.fork(), webhook.id, webhook.position, pageSize);
    /** The last event passed over without a delivery: the position moves to it before any wait. */
    let skipTo: FeedPosition | undefined;
    const flushSkip = async () => {
      if (!skipTo) return;
      if (!(await movePosition(root.fork(), owner, webhook.id, skipTo))) throw new LeaseLost();
      this.webhook.position = skipTo;
      skipTo = undefined;
    };
    for (const event of events) {
      if (this.stopped) break;
      const position: FeedPosition = { xid: BigInt(event.xid), id: BigInt(event.id) };
      if (!matchesWebhook(event, event.task, this.webhook)) {
        skipTo = position;
        continue;
      }
      // Not recorded yet (the usual case): its first attempt writes its row with the outcome, in the statement
      // that records it, so a delivery that succeeds at once costs one statement.
      let delivery: DeliveryRow = event.delivery ?? {
        id: randomUUID(),
        webhookId: webhook.id,
        eventId: event.id,
        redelivery: false,
        status: 'PENDING',
        attempts: 0,
        retryStartedAt: new Date(),
        dueInMs: 0,
        recorded: false,
      };
      if (delivery.status === 'DELIVERED') {
        // Sent before a crash or a lost lease, not yet past: only the position moves.
        skipTo = position;
        continue;
      }
      if (delivery.status === 'FAILED') {
        // Re-enabled without its delivery reset: a new run of attempts, due now.
        if (!(await restartFailed(root.fork(), owner, delivery.id))) throw new LeaseLost();
        delivery = { ...delivery, status: 'PENDING', dueInMs: 0, retryStartedAt: new Date() };
      }
      if (delivery.dueInMs > 0) {
        await flushSkip();
        this.waitingRetry = true;
        return delivery.dueInMs;
      }
      const retryInMs = await this.attempt(delivery, event, position);
      if (retryInMs === undefined) {
        skipTo = undefined;
        this.webhook.position = position;
        continue;
      }
      // Later events wait for this one: order is kept.
      await flushSkip();
      this.waitingRetry = true;
      return Math.max(1, retryInMs);
    }
    await flushSkip();
    if (this.stopped) return 0;
    if (events.length === pageSize) return 0;
    if (heldBack) {
      const delay = this.heldBackDelay;
      this.heldBackDelay = Math.min(HELD_BACK_MAX_MS, delay * 2);
      return delay;
    }
    this.heldBackDelay = HELD_BACK_FIRST_MS;
    return undefined;
  }

  private async sendRedeliveries(): Promise<void> {
    for (const [id, due] of [...this.redeliveries]) {
      if (this.stopped) return;
      this.redeliveries.delete(id);
      this.sending = id;
      try {
        await this.attempt(due.delivery, due.event, undefined);
        this.redeliveryAttempts.set(id, due.delivery.attempts + 1);
      } finally {
        this.sending = undefined;
      }
    }
  }

  /**
   * Sends one attempt and records it. Undefined when delivered (for the feed's own: the position moved to
   * `position`); after a failure, the milliseconds until its next attempt. Throws {@link LeaseLost} or {@link Disabled}.
   */
  private async attempt(delivery: DeliveryRow, event: FeedEvent, position: FeedPosition | undefined): Promise<number | undefined> {
    const { root, owner, sender, log } = this.ctx;
    const webhook = this.webhook;
    const secrets = [webhook.secret];
    if (webhook.previousSecret && webhook.previousSecretExpiresAt && webhook.previousSecretExpiresAt.getTime() > Date.now()) secrets.push(webhook.previousSecret);
    const startedAt = new Date();
    let result: AttemptResult;
    this.attempting = true;
    try {
      result = await sender.send({ url: webhook.url, webhookId: webhook.id, deliveryId: delivery.id, eventId: event.id, body: payloadBody(event), secrets });
    } finally {
      this.attempting = false;
    }
    // Cut by the emergency path: the endpoint did nothing wrong; whoever leases the webhook next sends it again.
    if (result.aborted) throw new Aborted();
    this.ctx.onAttempt(result.outcome, result.latencyMs / 1000);
    const attempt = delivery.attempts + 1;
    const fields = { requestId: delivery.id, webhookId: webhook.id, eventId: event.id, attempt, redelivery: delivery.redelivery };
    if (result.outcome === 'delivered') {
      if (!(await recordDelivered(root.fork(), owner, delivery, { statusCode: result.statusCode, latencyMs: result.latencyMs, startedAt }, position))) {
        throw new LeaseLost();
      }
      log.debug({ ...fields, statusCode: result.statusCode, latencyMs: result.latencyMs }, 'webhook delivered');
      return undefined;
    }
    const error = result.error ?? result.outcome;
    if (delivery.recorded === false) {
      // A first attempt failed: its row is written now (PENDING), and the failure recorded on it as on any other.
      const written = await ensureDelivery(root.fork(), owner, delivery.id, webhook.id, event.id);
      if (!written) throw new LeaseLost();
      delivery = written;
    }
    const since = delivery.retryStartedAt.toISOString();
    const outcome = await recordFailure(root.fork(), owner, delivery.id, {
      statusCode: result.statusCode,
      latencyMs: result.latencyMs,
      startedAt,
      error,
      retryDelayMs: retryDelayMs(attempt, this.ctx.retryMinMs, this.ctx.retryMaxMs),
      retryForMs: this.ctx.retryForMs,
      disabledReason: `deliveries failing since ${since}: event ${event.id} failed ${attempt} attempts over the retry period (WEBHOOK_RETRY_FOR_MS); last error: ${error}`.slice(0, 4000),
    });
    if (!outcome) throw new LeaseLost();
    log.warn({ ...fields, statusCode: result.statusCode, error, outcome: result.outcome, nextAttemptAt: outcome.nextAttemptAt?.toISOString() ?? null }, 'webhook delivery attempt failed');
    if (outcome.status === 'FAILED') {
      if (outcome.disabled) {
        log.info({ webhookId: webhook.id, eventId: event.id, attempts: outcome.attempts, failingSince: since, error }, 'webhook disabled: its deliveries failed for the whole retry period');
        this.ctx.onDisabled(webhook.id);
        throw new Disabled();
      }
      log.info({ requestId: delivery.id, webhookId: webhook.id, eventId: event.id, attempts: outcome.attempts }, 'webhook redelivery given up: its retry period ran out');
    }
    return outcome.dueInMs;
  }
}
