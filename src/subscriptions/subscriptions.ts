/**
 * Live subscriptions of one app: the LISTEN connection, the event hub it wakes, and the WebSocket server that
 * serves streams from the hub. Built by `createApp` (one per app, nothing module-level), started once the app has
 * booted, closed first on shutdown, before the HTTP server and the pool.
 */
import type { Server } from 'node:http';
import type { WsBackends, WsServerOptions } from './ws.server.js';
import { SubscriptionWsServer } from './ws.server.js';
import { EventHub } from './hub.js';
import { FeedListener, type ListenerState } from './listener.js';

export type SubscriptionsOptions = Omit<WsServerOptions, 'hub'>;

/** Live state for /metrics. */
export interface SubscriptionStats {
  active: number;
  listener: ListenerState;
  listenerReconnects: number;
  delivered: number;
}

export class Subscriptions {
  private readonly hub: EventHub;
  private readonly ws: SubscriptionWsServer;
  private listener: FeedListener | undefined;
  private closed: Promise<void> | undefined;
  /** Others woken with the hub (the webhook worker): the one LISTEN connection serves them all. */
  private readonly wakeListeners = new Set<() => void>();

  constructor(private readonly options: SubscriptionsOptions) {
    this.hub = new EventHub({ log: options.log });
    this.ws = new SubscriptionWsServer({ ...options, hub: this.hub });
  }

  /**
   * Calls `wake` on every change-feed notification and after every listener (re)connect, like the hub (a wake-up
   * carries no data: the woken part reads the feed itself). Returns a function that stops the calls.
   */
  onWake(wake: () => void): () => void {
    this.wakeListeners.add(wake);
    return () => this.wakeListeners.delete(wake);
  }

  private wake(): void {
    this.hub.wake();
    for (const wake of this.wakeListeners) wake();
  }

  /** Takes WebSocket upgrades of `server` (they are refused with 503 until {@link start}). */
  bind(server: Server): void {
    this.ws.bind(server);
  }

  /**
   * Starts the hub at the feed's head, the listener (in the background: a listener that cannot connect yet is
   * retried, and the hub's safety poll serves meanwhile), and the WebSocket server.
   *
   * @param listenerUrl a direct PostgreSQL URL (not PgBouncer: LISTEN through it never delivers)
   * @param applicationName `DB_APPLICATION_NAME`; the listener's backend is `<name>:listener`
   */
  async start(backends: WsBackends, listenerUrl: string, applicationName: string): Promise<void> {
    if (this.closed) return;
    await this.hub.start(backends.root);
    this.listener = new FeedListener({ url: listenerUrl, applicationName, log: this.options.log, onWake: () => this.wake() });
    this.listener.start();
    this.ws.attach(backends);
  }

  stats(): SubscriptionStats {
    return {
      active: this.hub.active,
      listener: this.listener?.state() ?? 'idle',
      listenerReconnects: this.listener?.reconnects ?? 0,
      delivered: this.hub.delivered,
    };
  }

  /** Closes every socket (1001), ends every stream, closes the listener connection. Idempotent. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      const sockets = this.ws.sockets;
      await this.ws.close();
      await this.hub.stop();
      await this.listener?.stop();
      if (sockets > 0) this.options.log.info({ sockets }, 'WebSocket connections closed (1001 Going Away)');
    })();
    return this.closed;
  }

  /** The emergency path: cut every socket now, then close the rest. */
  async terminate(): Promise<void> {
    this.ws.terminate();
    await this.close();
  }
}
