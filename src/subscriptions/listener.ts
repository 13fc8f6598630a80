/**
 * The instance's one LISTEN connection (docs/DESIGN.md, "Subscriptions across instances"): a direct, non-pooled
 * node-postgres client on `LISTEN task_events`. A notification carries no data; it only wakes the hub, which reads
 * the change feed itself. Notifications sent while the connection is down are lost, so every (re)connect wakes the
 * hub too, and the hub's safety poll covers the time in between: a lost listener delays events, never drops them.
 */
import pg from 'pg';
import type { Logger } from '../logger.js';

/** The channel the `task_event` trigger notifies (migrations/Migration20261127090000.ts). */
export const FEED_CHANNEL = 'task_events';

/** Suffix of the listener's `application_name`, so operators (and tests) can tell its backend apart. */
export const LISTENER_APPLICATION_SUFFIX = ':listener';

const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 5000;
const CONNECT_TIMEOUT_MS = 5000;
const END_TIMEOUT_MS = 1000;

/** `connecting` until the first LISTEN; `down` between a lost connection and the next LISTEN. */
export type ListenerState = 'idle' | 'connecting' | 'listening' | 'down' | 'stopped';

export interface FeedListenerOptions {
  /** A direct PostgreSQL URL: LISTEN through PgBouncer's transaction pooling never delivers. */
  url: string;
  /** `DB_APPLICATION_NAME`; the listener adds {@link LISTENER_APPLICATION_SUFFIX}. */
  applicationName: string;
  log: Logger;
  /** Called on every notification and after every (re)connect. */
  onWake: () => void;
}

/** The listener's `application_name`: PostgreSQL keeps 63 bytes, so the app name is cut to keep the suffix. */
export function listenerApplicationName(applicationName: string): string {
  return `${applicationName.slice(0, 63 - LISTENER_APPLICATION_SUFFIX.length)}${LISTENER_APPLICATION_SUFFIX}`;
}

export class FeedListener {
  private client: pg.Client | undefined;
  private status: ListenerState = 'idle';
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Times the connection was re-established after a loss (for metrics). */
  reconnects = 0;

  constructor(private readonly options: FeedListenerOptions) {}

  state(): ListenerState {
    return this.status;
  }

  /** Read through a method: `stop()` may change the state while `connect()` awaits. */
  private isStopped(): boolean {
    return this.status === 'stopped';
  }

  /** Connects in the background (retrying with backoff); never throws. */
  start(): void {
    if (this.status !== 'idle') return;
    void this.connect();
  }

  private async connect(): Promise<void> {
    if (this.status === 'stopped') return;
    this.status = this.status === 'down' ? 'down' : 'connecting';
    const client = new pg.Client({
      connectionString: this.options.url,
      application_name: listenerApplicationName(this.options.applicationName),
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      // A peer that vanished without a FIN (a dead load balancer, a cut network) is noticed by TCP keepalive.
      keepAlive: true,
    });
    let gone = false;
    const lost = (err?: unknown) => {
      if (gone) return;
      gone = true;
      client.removeAllListeners('notification');
      client.on('error', () => undefined); // a late socket error of a client we are done with
      void client.end().catch(() => undefined);
      if (this.client === client) this.client = undefined;
      this.retry(err);
    };
    client.on('notification', () => this.options.onWake());
    client.on('error', (err) => lost(err));
    client.on('end', () => lost(new Error('the listener connection ended')));
    try {
      await client.connect();
      await client.query(`listen ${FEED_CHANNEL}`);
    } catch (err) {
      lost(err);
      return;
    }
    if (gone) return;
    if (this.isStopped()) {
      gone = true;
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    if (this.attempt > 0) {
      this.reconnects++;
      this.options.log.info({ attempts: this.attempt }, 'subscription listener reconnected: reading the change feed for what it missed');
    } else {
      this.options.log.info({ channel: FEED_CHANNEL }, 'subscription listener connected');
    }
    this.attempt = 0;
    this.status = 'listening';
    this.options.onWake();
  }

  private retry(err: unknown): void {
    if (this.status === 'stopped') return;
    this.status = 'down';
    const delay = Math.round(Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** this.attempt) * (0.5 + Math.random() / 2));
    this.attempt++;
    // No readiness change: the hub's safety poll keeps subscribers fed, only later. Operators should still see it.
    this.options.log.warn({ err, retryInMs: delay, attempt: this.attempt }, 'subscription listener connection lost: reconnecting');
    this.timer = setTimeout(() => void this.connect(), delay);
    this.timer.unref();
  }

  /** Closes the connection (bounded: a dead peer must not hold shutdown). Idempotent. */
  async stop(): Promise<void> {
    if (this.status === 'stopped') return;
    this.status = 'stopped';
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    client.removeAllListeners('notification');
    client.removeAllListeners('end');
    client.on('error', () => undefined);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      client.end().catch(() => undefined),
      new Promise((r) => (timer = setTimeout(r, END_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
  }
}
