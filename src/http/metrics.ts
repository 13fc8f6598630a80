/**
 * Prometheus metrics (prom-client), one registry per app: several apps live in one test process, and the global
 * default registry would make them share (and double-register) every metric.
 *
 * Live state (pool, circuit breaker, server state) is read from {@link MetricsSources} at scrape time, so a scrape
 * always shows the present and nothing has to push updates. Operation, SQL and ping timings are observed as they
 * happen. Label values that clients choose (operation names) are bounded: see {@link BoundedLabel}.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PoolStats } from '../db/pool.js';
import type { ReplicaStatus } from '../db/replicas.js';
import { ERROR_CODES } from '../errors.js';

/** Where the metrics read live state from. */
export interface MetricsSources {
  pool(): PoolStats;
  breakerState(): 'closed' | 'half-open' | 'open';
  appState(): 'booting' | 'ready' | 'draining' | 'stopped';
  /** Each read replica's state (empty without DATABASE_REPLICA_URLS). */
  replicas?(): ReplicaStatus[];
  /** Live subscriptions: open streams, the LISTEN connection's state, its reconnects, events fanned out. */
  subscriptions?(): { active: number; listener: string; listenerReconnects: number; delivered: number };
  /**
   * Each webhook's backlog, read from the database at scrape time (one statement): settled events after its position
   * (capped) and the age of the first one. Empty while the database is not ready.
   */
  webhookBacklog?(): Promise<Array<{ webhookId: string; backlog: number; oldestAgeSeconds: number }>>;
  /** The delivery worker: webhooks this instance leases, requests on the wire. */
  webhookWorker?(): { leases: number; inFlight: number };
}

/** Outcomes of a webhook delivery attempt (src/webhooks/sender.ts), each counted from 0. */
export const WEBHOOK_OUTCOMES = ['delivered', 'http_error', 'timeout', 'network_error', 'refused'] as const;
export type WebhookOutcome = (typeof WEBHOOK_OUTCOMES)[number];
/** Where `webhook_backlog_events` stops counting: each scrape reads at most this many index entries per webhook. */
export const WEBHOOK_BACKLOG_CAP = 10_000;

/** What a finished GraphQL operation reports (see `OperationReport` in src/app.ts). */
export interface OperationObservation {
  name: string;
  type: string;
  durationMs: number;
  sqlStatements: number;
  errorCodes: string[];
}

export interface Metrics {
  readonly registry: Registry;
  observeOperation(op: OperationObservation): void;
  /** One SQL statement's round trip, in ms. */
  observeQuery(tookMs: number): void;
  /** One health ping (`select 1`) round trip, in ms. */
  observePing(ms: number): void;
  /** One webhook delivery attempt: its outcome and how long it took, in seconds. */
  observeWebhookAttempt(outcome: WebhookOutcome, seconds: number): void;
  /** A webhook was disabled after its retry period ran out. */
  observeWebhookDisabled(): void;
  /** The exposition text and its content type. */
  render(): Promise<{ contentType: string; body: string }>;
}

/** How many distinct client-chosen operation names get their own label value before new ones become `other`. */
export const MAX_OPERATION_NAMES = 200;
/** Error codes outside the contract's closed set that may still get their own label value (Apollo adds a few). */
const MAX_EXTRA_ERROR_CODES = 20;

const OPERATION_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;
const OPERATION_TYPES: ReadonlySet<string> = new Set(['query', 'mutation', 'subscription']);

/** Operations last from about a millisecond (`__typename`) to the acquire/statement timeouts (seconds). */
const OPERATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** A single statement or ping is usually well under a millisecond on a local database. */
const QUERY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Webhook attempts: a local receiver answers in milliseconds, a remote one in tens to hundreds; the timeout is 10 s by default. */
const WEBHOOK_ATTEMPT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Fibonacci: fine steps where batching matters (0..5), coarse ones where an N+1 shows up. */
const SQL_STATEMENT_BUCKETS = [0, 1, 2, 3, 5, 8, 13, 21, 34, 55];

const BREAKER_STATE = { closed: 0, 'half-open': 1, open: 2 } as const;
const SERVER_STATE = { booting: 0, ready: 1, draining: 2, stopped: 3 } as const;
const REPLICA_STATE = { up: 0, lagging: 1, down: 2 } as const;

/**
 * Maps untrusted strings to a bounded set of label values: every series is kept in memory until the process
 * exits, so a client sending random names must not be able to grow it without limit.
 */
export class BoundedLabel {
  private readonly seen = new Set<string>();

  /**
   * @param pattern what a value must look like to be used as is (else `invalid`)
   * @param limit how many distinct values are admitted (after that, new ones become `other`)
   * @param preset values always admitted, not counted against `limit`
   */
  constructor(
    private readonly pattern: RegExp,
    private readonly limit: number,
    private readonly preset: ReadonlySet<string> = new Set(),
  ) {}

  /** The label value to record for `value`. */
  of(value: string): string {
    if (this.preset.has(value) || this.seen.has(value)) return value;
    if (!this.pattern.test(value)) return 'invalid';
    if (this.seen.size >= this.limit) return 'other';
    this.seen.add(value);
    return value;
  }
}

/** Registers the gauges that read live state from `sources` when scraped. */
function registerStateGauges(registry: Registry, sources: MetricsSources): void {
  const registers = [registry];
  // Each gauge reads the pool itself. A scrape runs every collect() in one synchronous pass, so the readings agree
  // with each other (size = used + free) without a shared snapshot that could go stale between scrapes.
  const readPool = (): PoolStats | undefined => {
    try {
      return sources.pool();
    } catch {
      // A pool being torn down (shutdown, reconnect) must not fail the whole scrape: keep the last values.
      return undefined;
    }
  };
  new Gauge({
    name: 'db_pool_connections',
    help: 'Pooled database connections by state: used (checked out) or free (idle in the pool).',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const pool = readPool();
      if (!pool) return;
      this.set({ state: 'used' }, pool.used);
      this.set({ state: 'free' }, pool.free);
    },
  });
  const poolGauge = (name: string, help: string, read: (p: PoolStats) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const p = readPool();
        if (p) this.set(read(p));
      },
    });
  poolGauge('db_pool_size', 'Open database connections in the pool (used + free).', (p) => p.size);
  poolGauge('db_pool_pending_acquires', 'Operations waiting for a pooled connection.', (p) => p.pending);
  poolGauge('db_pool_max', 'The most connections the pool may open (DB_POOL_MAX).', (p) => p.max);

  new Gauge({
    name: 'circuit_breaker_state',
    help: 'The database circuit breaker: 0 closed, 1 half-open, 2 open (failing fast).',
    registers,
    collect() {
      this.set(BREAKER_STATE[sources.breakerState()]);
    },
  });
  new Gauge({
    name: 'server_state',
    help: 'The server lifecycle state: 0 booting, 1 ready, 2 draining, 3 stopped.',
    registers,
    collect() {
      this.set(SERVER_STATE[sources.appState()]);
    },
  });
  // Label values are the configured replicas' addresses: a bounded set the operator chose.
  new Gauge({
    name: 'db_replica_state',
    help: 'Each read replica: 0 up (in rotation), 1 lagging past DB_REPLICA_MAX_LAG_MS, 2 down (both out of rotation).',
    labelNames: ['replica'] as const,
    registers,
    collect() {
      for (const r of sources.replicas?.() ?? []) this.set({ replica: r.name }, REPLICA_STATE[r.state]);
    },
  });
  new Gauge({
    name: 'db_replica_lag_seconds',
    help: 'How far each read replica trails the primary, as of its last probe.',
    labelNames: ['replica'] as const,
    registers,
    collect() {
      for (const r of sources.replicas?.() ?? []) if (r.lagMs !== null) this.set({ replica: r.name }, r.lagMs / 1000);
    },
  });
  registerSubscriptionGauges(registry, sources);
  registerWebhookGauges(registry, sources);
  new Gauge({
    name: 'server_draining',
    help: '1 while the server is shutting down (readiness 503, no new connections), else 0.',
    registers,
    collect() {
      const state = sources.appState();
      this.set(state === 'draining' || state === 'stopped' ? 1 : 0);
    },
  });
}

/** Subscription state, read at scrape time like the pool. */
function registerSubscriptionGauges(registry: Registry, sources: MetricsSources): void {
  if (!sources.subscriptions) return;
  const read = () => sources.subscriptions?.() ?? { active: 0, listener: 'idle', listenerReconnects: 0, delivered: 0 };
  const registers = [registry];
  new Gauge({
    name: 'graphql_subscriptions_active',
    help: 'Open subscription streams (WebSocket) on this instance.',
    registers,
    collect() {
      this.set(read().active);
    },
  });
  new Gauge({
    name: 'subscription_listener_up',
    help: '1 while the LISTEN connection that wakes subscriptions is connected, else 0 (events then arrive by the safety poll).',
    registers,
    collect() {
      this.set(read().listener === 'listening' ? 1 : 0);
    },
  });
  // Gauges that only grow: prom-client counters cannot be set from a live reading.
  new Gauge({
    name: 'subscription_listener_reconnects',
    help: 'Times the LISTEN connection was re-established after a loss, since start.',
    registers,
    collect() {
      this.set(read().listenerReconnects);
    },
  });
  new Gauge({
    name: 'subscription_feed_events',
    help: 'Change-feed events the subscription hub has read and fanned out to its streams, since start.',
    registers,
    collect() {
      this.set(read().delivered);
    },
  });
}

/**
 * Webhook backlog gauges, read from the database at scrape time. Label values are webhook ids: bounded by
 * WEBHOOK_MAX. Both gauges share one reading per scrape (a scrape collects every metric concurrently).
 */
function registerWebhookGauges(registry: Registry, sources: MetricsSources): void {
  const registers = [registry];
  if (sources.webhookWorker) {
    const worker = sources.webhookWorker.bind(sources);
    new Gauge({
      name: 'webhook_leases',
      help: 'Webhooks this instance leases and delivers now.',
      registers,
      collect() {
        this.set(worker().leases);
      },
    });
    new Gauge({
      name: 'webhook_requests_in_flight',
      help: 'Webhook delivery requests of this instance waiting for an answer.',
      registers,
      collect() {
        this.set(worker().inFlight);
      },
    });
  }
  const readBacklog = sources.webhookBacklog?.bind(sources);
  if (!readBacklog) return;
  type Reading = Awaited<ReturnType<typeof readBacklog>>;
  let pending: Promise<Reading | undefined> | undefined;
  const read = (): Promise<Reading | undefined> => {
    // A database that fails must not fail the whole scrape: the series keep their last values.
    pending ??= readBacklog()
      .catch(() => undefined)
      .finally(() => setImmediate(() => (pending = undefined)));
    return pending;
  };
  new Gauge({
    name: 'webhook_backlog_events',
    help: `Settled change-feed events after each webhook's position (matching or not), counted up to ${WEBHOOK_BACKLOG_CAP}.`,
    labelNames: ['webhook'] as const,
    registers,
    async collect() {
      const rows = await read();
      if (!rows) return;
      this.reset();
      for (const r of rows) this.set({ webhook: r.webhookId }, r.backlog);
    },
  });
  new Gauge({
    name: 'webhook_oldest_undelivered_age_seconds',
    help: 'Age of the first settled change-feed event after each webhook\'s position; 0 when it is caught up.',
    labelNames: ['webhook'] as const,
    registers,
    async collect() {
      const rows = await read();
      if (!rows) return;
      this.reset();
      for (const r of rows) this.set({ webhook: r.webhookId }, r.oldestAgeSeconds);
    },
  });
}

/**
 * Builds the app's metrics on a registry of its own.
 *
 * @param sources live state read at every scrape (pool statistics, breaker and server state)
 */
export function createMetrics(sources: MetricsSources): Metrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });
  registerStateGauges(registry, sources);

  const operationDuration = new Histogram({
    name: 'graphql_operation_duration_seconds',
    help: 'GraphQL operations from request to response, by operation name and type.',
    labelNames: ['operation', 'type'] as const,
    buckets: OPERATION_BUCKETS,
    registers,
  });
  const errors = new Counter({
    name: 'graphql_errors_total',
    help: 'Errors in GraphQL responses, by extensions.code (one per error).',
    labelNames: ['code'] as const,
    registers,
  });
  const sqlStatements = new Histogram({
    name: 'graphql_operation_sql_statements',
    help: 'SQL statements sent per GraphQL operation, by operation type.',
    labelNames: ['type'] as const,
    buckets: SQL_STATEMENT_BUCKETS,
    registers,
  });
  const queryDuration = new Histogram({
    name: 'db_query_duration_seconds',
    help: 'Round trip of each SQL statement, as timed by MikroORM.',
    buckets: QUERY_BUCKETS,
    registers,
  });
  const pingDuration = new Histogram({
    name: 'db_ping_duration_seconds',
    help: 'Round trip of each health ping (select 1) to PostgreSQL.',
    buckets: QUERY_BUCKETS,
    registers,
  });

  const webhookAttempts = new Counter({
    name: 'webhook_deliveries_total',
    help: 'Webhook delivery attempts by outcome: delivered (2xx), http_error, timeout, network_error, refused (the URL policy).',
    labelNames: ['outcome'] as const,
    registers,
  });
  for (const outcome of WEBHOOK_OUTCOMES) webhookAttempts.inc({ outcome }, 0);
  const webhookAttemptDuration = new Histogram({
    name: 'webhook_attempt_duration_seconds',
    help: 'Webhook delivery attempts from the start of the request to the answer (or the failure).',
    buckets: WEBHOOK_ATTEMPT_BUCKETS,
    registers,
  });
  const webhooksDisabled = new Counter({
    name: 'webhook_disabled_total',
    help: 'Webhooks disabled by the worker because an event failed for the whole retry period.',
    registers,
  });

  // `anonymous` is what the app reports for unnamed operations (and ones that never parsed).
  const operationNames = new BoundedLabel(OPERATION_NAME, MAX_OPERATION_NAMES, new Set(['anonymous']));
  const errorCodes = new BoundedLabel(ERROR_CODE, MAX_EXTRA_ERROR_CODES, new Set(ERROR_CODES));

  return {
    registry,
    observeOperation(op) {
      const type = OPERATION_TYPES.has(op.type) ? op.type : 'unknown';
      operationDuration.observe({ operation: operationNames.of(op.name), type }, op.durationMs / 1000);
      sqlStatements.observe({ type }, op.sqlStatements);
      for (const code of op.errorCodes) errors.inc({ code: errorCodes.of(code) });
    },
    observeQuery(tookMs) {
      // MikroORM leaves `took` undefined for some statements; a NaN would poison the histogram's sum.
      if (Number.isFinite(tookMs)) queryDuration.observe(tookMs / 1000);
    },
    observePing(ms) {
      if (Number.isFinite(ms)) pingDuration.observe(ms / 1000);
    },
    observeWebhookAttempt(outcome, seconds) {
      webhookAttempts.inc({ outcome });
      if (Number.isFinite(seconds)) webhookAttemptDuration.observe(seconds);
    },
    observeWebhookDisabled() {
      webhooksDisabled.inc();
    },
    render: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
  };
}
