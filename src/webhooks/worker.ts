/**
 * The webhook delivery worker (docs/webhooks.md): one per app, built by `createApp`, started once the app has
 * booted when WEBHOOK_WORKER is on.
 *
 * It leases webhooks in PostgreSQL (no session state: safe behind PgBouncer's transaction pooling), runs one
 * {@link DeliveryLoop} per leased webhook, and is woken by every change-feed notification and listener reconnect,
 * by `webhooksChanged()` after a change through the API, and by its own poll (about once a second) that renews and
 * claims leases, hands out due redeliveries, and now and then deletes old delivery records.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from '../logger.js';
import type { WebhookConfig } from '../config.js';
import { DeliveryLoop, type LoopEnd } from './delivery-loop.js';
import { WebhookSender, type AttemptOutcome } from './sender.js';
import { claimLeases, deleteOldDeliveries, dueRedeliveries, releaseLeases, renewLeases, type WebhookRow } from './delivery.repository.js';

export interface WebhookWorkerOptions {
  config: WebhookConfig;
  log: Logger;
  /** Every attempt's outcome and duration in seconds (metrics). */
  onAttempt?(outcome: AttemptOutcome, seconds: number): void;
  /** A webhook was disabled because its retry period ran out (metrics). */
  onDisabled?(webhookId: string): void;
  /** The poll's period; the default suits production (tests may shorten it). */
  pollIntervalMs?: number;
}

/** Live state for /metrics. */
export interface WorkerStats {
  /** Webhooks this instance leases and delivers now. */
  leases: number;
  /** Requests on the wire. */
  inFlight: number;
}

const POLL_MS = 1000;
/** Every this many polls, idle loops read the feed even without a notification (the listener may be down). */
const SAFETY_READ_EVERY = 5;
/** Deliveries per feed read of one webhook. */
const PAGE_SIZE = 100;
/** Due redeliveries handed out per poll. */
const REDELIVERY_BATCH = 50;
/** How often finished delivery records past the retention are deleted, and how many per statement. */
const RETENTION_EVERY_MS = 5 * 60_000;
const RETENTION_BATCH = 5000;
/** After a database error, a loop tries again after this long. */
const ERROR_DELAY_MS = 1000;

/** `<hostname>:<pid>:<random>`: unique per worker, readable in `webhook.lease_owner`. */
function instanceId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`.slice(0, 255);
}

export class WebhookWorker {
  /** This instance's name in `lease_owner`. */
  readonly owner = instanceId();
  private readonly sender: WebhookSender;
  private readonly loops = new Map<string, DeliveryLoop>();
  private root: EntityManager | undefined;
  private poll: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private tickAgain = false;
  private polls = 0;
  private lastRenew = 0;
  private lastRetention = 0;
  private stopping: Promise<void> | undefined;
  /** The last round failed on the database. */
  private failing = false;
  /**
   * Runs work in the context the worker was built in (createApp's): `changed()` is called inside a GraphQL request,
   * whose AsyncLocalStorage (replica routing, the operation's statement count) must not follow the worker's reads.
   */
  private readonly detached = AsyncLocalStorage.snapshot();

  constructor(private readonly options: WebhookWorkerOptions) {
    this.sender = new WebhookSender({ allowPrivate: options.config.allowPrivate, timeoutMs: options.config.timeoutMs });
  }

  /** Starts leasing and delivering on `root` (the ORM's root EntityManager; every statement runs on a fork). */
  start(root: EntityManager): void {
    if (this.root || this.stopping) return;
    this.root = root;
    // At least four rounds per lease, so a short WEBHOOK_LEASE_MS is still renewed a third of the way through.
    this.poll = setInterval(() => this.tick(), this.options.pollIntervalMs ?? Math.min(POLL_MS, Math.floor(this.options.config.leaseMs / 4)));
    this.poll.unref();
    this.options.log.info({ owner: this.owner }, 'webhook delivery worker started');
    this.tick();
  }

  stats(): WorkerStats {
    return { leases: this.loops.size, inFlight: this.sender.active };
  }

  /** New events may be in the feed (a notification, a listener reconnect): every idle loop reads on. */
  wakeFeed(): void {
    for (const loop of this.loops.values()) loop.wakeFeed();
  }

  /** A webhook was created, changed, re-enabled or deleted, or a redelivery asked for: look at the leases now. */
  changed(): void {
    this.detached(() => setImmediate(() => this.tick(true)));
  }

  /** One round of the poll; rounds never overlap (a call during one makes it go around once more). */
  private tick(renewNow = false): void {
    if (!this.root || this.stopping) return;
    if (renewNow) this.lastRenew = 0;
    if (this.ticking) {
      this.tickAgain = true;
      return;
    }
    this.ticking = this.detached(() => this.round())
      .then(() => {
        this.failing = false;
      })
      .catch((err: unknown) => {
        // Once per outage: the poll tries again every second.
        if (!this.failing) this.options.log.warn({ err }, 'webhook delivery worker: leasing failed; trying again on every poll');
        this.failing = true;
      })
      .finally(() => {
        this.ticking = undefined;
        if (this.tickAgain) {
          this.tickAgain = false;
          this.tick();
        }
      });
  }

  private async round(): Promise<void> {
    const root = this.root as EntityManager;
    const { config, log } = this.options;
    const holder = { owner: this.owner, leaseMs: config.leaseMs };
    const now = Date.now();
    // Renewed well before they end (a third of the lease): a slow statement or a busy event loop still keeps them.
    if (now - this.lastRenew >= config.leaseMs / 3) {
      const held = await renewLeases(root.fork(), holder);
      this.lastRenew = now;
      const ids = new Set(held.map((w) => w.id));
      for (const [id, loop] of this.loops) {
        if (ids.has(id) || loop.stopping) continue;
        log.info({ webhookId: id, owner: this.owner }, 'webhook lease lost (disabled, deleted, or taken over): its deliveries stop here');
        void loop.stop();
      }
      this.reconcile(held);
    }
    if (this.stopping) return;
    const claimed = await claimLeases(root.fork(), holder, Math.max(1, config.max));
    for (const w of claimed) log.info({ webhookId: w.id, owner: this.owner }, 'webhook lease taken: delivering it from this instance');
    this.reconcile(claimed);
    if (this.loops.size > 0) {
      for (const due of await dueRedeliveries(root.fork(), this.owner, REDELIVERY_BATCH)) this.loops.get(due.delivery.webhookId)?.redeliver(due);
    }
    if (++this.polls % SAFETY_READ_EVERY === 0) this.wakeFeed();
    if (now - this.lastRetention >= RETENTION_EVERY_MS) {
      this.lastRetention = now;
      const deleted = await deleteOldDeliveries(root.fork(), config.deliveryRetentionMs, RETENTION_BATCH);
      if (deleted > 0) log.info({ deleted, retentionMs: config.deliveryRetentionMs }, 'old webhook delivery records deleted');
    }
  }

  /** Starts a loop for each leased webhook without one, and hands the others their fresh rows. */
  private reconcile(rows: readonly WebhookRow[]): void {
    for (const row of rows) {
      const loop = this.loops.get(row.id);
      if (loop) {
        // A loop still finishing (its lease was lost a moment ago) is left to end; the next round starts a new one.
        if (!loop.stopping) loop.update(row);
        continue;
      }
      if (this.stopping) continue;
      this.startLoop(row);
    }
  }

  private startLoop(row: WebhookRow): void {
    const { config, log } = this.options;
    const loop = new DeliveryLoop(row, {
      root: this.root as EntityManager,
      owner: this.owner,
      sender: this.sender,
      log,
      retryMinMs: config.retryMinMs,
      retryMaxMs: config.retryMaxMs,
      retryForMs: config.retryForMs,
      pageSize: PAGE_SIZE,
      errorDelayMs: ERROR_DELAY_MS,
      onAttempt: (outcome, seconds) => this.options.onAttempt?.(outcome, seconds),
      onDisabled: (id) => this.options.onDisabled?.(id),
    });
    this.loops.set(row.id, loop);
    void loop.done.then((end: LoopEnd) => {
      if (this.loops.get(row.id) === loop) this.loops.delete(row.id);
      if (end === 'lost') log.info({ webhookId: row.id, owner: this.owner }, 'webhook lease lost during a delivery: another instance goes on');
      // A lease still (or again) this instance's, e.g. a webhook disabled and re-enabled meanwhile, gets its loop now.
      if (end !== 'disabled') this.tick(true);
    });
  }

  /**
   * Graceful stop: no more claims or new attempts; attempts in flight finish and are recorded (the leases are kept
   * alive meanwhile), then this instance's leases are released so another instance takes over at once. The caller
   * bounds the wait (SHUTDOWN_GRACE_MS) and calls {@link terminate} past it.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.poll);
      // Flagged at once: no loop starts another attempt from here on.
      for (const loop of this.loops.values()) void loop.stop();
      const root = this.root;
      if (!root) return;
      await this.ticking;
      const loops = [...this.loops.values()];
      const busy = loops.filter((l) => l.busy).length;
      if (busy > 0) this.options.log.info({ inFlight: busy }, 'webhook delivery worker stopping: waiting for deliveries in flight');
      const holder = { owner: this.owner, leaseMs: this.options.config.leaseMs };
      const keepAlive = setInterval(() => void renewLeases(root.fork(), holder).catch(() => undefined), this.options.config.leaseMs / 3);
      try {
        await Promise.all(loops.map((l) => l.stop()));
      } finally {
        clearInterval(keepAlive);
      }
      await releaseLeases(root.fork(), this.owner).catch((err: unknown) =>
        this.options.log.warn({ err }, 'releasing webhook leases failed: other instances take them over when they end'),
      );
      this.sender.close();
      this.options.log.info({ released: loops.length }, 'webhook delivery worker stopped; leases released');
    })();
    return this.stopping;
  }

  /** The emergency path: cuts the requests in flight (they are sent again by whoever holds the lease next), then stops. */
  terminate(): Promise<void> {
    this.sender.abortAll();
    const stopped = this.stop();
    this.sender.abortAll();
    return stopped;
  }
}
