/**
 * `createApp`: the one factory that builds a server, for `main` and for the tests alike.
 *
 * It listens at once (`/healthz` 200, `/readyz` 503), then boots in the background: the embedded PostgreSQL when
 * no database is configured, the ORM once the database answers, migrations, Apollo. `stop()` runs the shutdown
 * sequence once, however often it is called.
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { ApolloServer } from '@apollo/server';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Pool } from 'pg';
import type { Config } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './db/embedded.js';
import { closeOrm, createOrm, migrate, openPoolMinimum, ormOptions, waitForDatabase } from './db/orm.js';
import { ENTITIES } from './entities.js';
import { waitForSchema } from './db/migrations-check.js';
import { checkDefaultStatementTimeout } from './db/pgbouncer.js';
import { poolStats } from './db/pool.js';
import { createApollo } from './graphql/apollo.js';
import type { GraphQLContext } from './graphql/context.js';
import { GraphQLEndpoint } from './graphql/endpoint.js';
import { Authenticator } from './auth/authenticator.js';
import { RateLimiter } from './http/rate-limit.js';
import { clientAddressResolver } from './http/client-address.js';
import { registerPlayground } from './http/playground.js';
import type { FastifyInstance } from 'fastify';
import { createHttpServer } from './http/server.js';
import { HealthService } from './http/health.service.js';
import { DatabaseGuard } from './db/guard.js';
import { TransactionRunner } from './db/transaction.js';
import { watchPool } from './db/pool-watch.js';
import { createMetrics, WEBHOOK_BACKLOG_CAP } from './http/metrics.js';
import { OperationRegistry } from './lifecycle/operations.js';
import { ReplicaRouter } from './db/replicas.js';
import { ReplicaMonitor } from './db/replicas-monitor.js';
import { Subscriptions } from './subscriptions/subscriptions.js';
import { WebhookWorker } from './webhooks/worker.js';
import { readBacklog } from './webhooks/delivery.repository.js';
import type { GraphQLSchema } from 'graphql';

/** How long the emergency path gives sockets and streams to close before it returns (the process then exits). */
const EMERGENCY_CLOSE_MS = 500;

/**
 * Resolves with `work`'s value, or `undefined` once `ms` have passed (the work then goes on unobserved, its
 * rejection ignored).
 */
async function within<T>(ms: number, work: Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  work.catch(() => undefined); // a rejection after the timeout has nobody to tell
  try {
    return await Promise.race([work, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** The life of an app, in order. */
export type AppState = 'booting' | 'ready' | 'draining' | 'stopped';

import type { OperationReport } from './graphql/endpoint.js';

export type { OperationReport };

/** How a stop ended: `clean` false means the emergency path ran. */
export interface StopResult {
  clean: boolean;
}

export interface App {
  /** Base URL of the HTTP server, e.g. `http://127.0.0.1:4000`. */
  readonly url: string;
  readonly log: Logger;
  /** Resolves when the server is ready; rejects when boot fails (the reason is logged). */
  readonly ready: Promise<void>;
  /** `operation` events carry an {@link OperationReport}. */
  readonly events: EventEmitter;
  state(): AppState;
  /** The ORM once booted. */
  orm(): MikroORM | undefined;
  /** Graceful shutdown (docs/DESIGN.md, "Shutdown"); idempotent: every call returns the same result. */
  stop(): Promise<StopResult>;
  /** Skips what is left of the drain: logs what is still running, closes everything, resolves `clean: false`. */
  emergencyStop(reason: string): Promise<StopResult>;
}

export interface CreateAppOptions {
  /** A logger to use instead of one built from `config.log` (tests capture lines with it). */
  logger?: Logger;
}

/** Builds, listens and starts booting a server. */
export async function createApp(config: Config, options: CreateAppOptions = {}): Promise<App> {
  const log = options.logger ?? createLogger(config.log);
  // Which runtime a log comes from: the Node.js npm scripts run on (node_modules/.bin) is not the machine's own.
  log.info({ node: process.version }, `starting on Node.js ${process.version}`);
  const events = new EventEmitter();
  const operations = new OperationRegistry();
  let state: AppState = 'booting';
  let orm: MikroORM | undefined;
  /**
   * The primary's pg pool, for statistics and the leak watch. MikroORM creates it when the ORM connects and
   * replaces it only on a reconnect, which this server never asks for (the pool replaces broken connections).
   */
  let pool: Pool | undefined;
  let embedded: EmbeddedPostgres | undefined;
  let apollo: ApolloServer<GraphQLContext> | undefined;
  const bootAbort = new AbortController();
  const guard = new DatabaseGuard({ log });
  /** Wakes the webhook delivery worker once it runs; a no-op until then. */
  let webhooksChanged: () => void = () => undefined;
  const webhooks = { config: config.webhooks, changed: () => webhooksChanged() };
  /** Delivers webhooks from this instance (docs/webhooks.md); started after boot when WEBHOOK_WORKER is on. */
  const webhookWorker = config.webhooks.worker
    ? new WebhookWorker({
        config: config.webhooks,
        log,
        onAttempt: (outcome, seconds) => metrics.observeWebhookAttempt(outcome, seconds),
        onDisabled: () => metrics.observeWebhookDisabled(),
      })
    : undefined;
  const transactions = new TransactionRunner({
    log,
    operations,
    leakWarningMs: config.database.leakWarningMs,
    localStatementTimeoutMs: config.database.pgbouncer ? config.database.statementTimeoutMs : undefined,
  });
  /** Why a booting server is not ready yet, when it waits on the operator (pending migrations). */
  let bootWaitReason: string | undefined;
  let stopPoolWatch: (() => void) | undefined;
  // Read replicas: only when configured (no router, no monitor, no routing work otherwise).
  const { replicaUrls, replicaWaitMs, replicaMaxLagMs } = config.database;
  const replicas = replicaUrls.length > 0 ? new ReplicaRouter({ urls: replicaUrls, waitMs: replicaWaitMs, log }) : undefined;
  const replicaMonitor = replicas && new ReplicaMonitor(replicas, { maxLagMs: replicaMaxLagMs, log });
  const metrics = createMetrics({
    pool: () => poolStats(pool, config.database.poolMax),
    breakerState: () => guard.state(),
    appState: () => state,
    replicas: () => replicas?.status() ?? [],
    subscriptions: () => subscriptions.stats(),
    // Read from the database only once it is migrated; the scrape tolerates a failing read.
    webhookBacklog: async () =>
      orm && (state === 'ready' || state === 'draining') ? readBacklog(orm.em.fork(), WEBHOOK_BACKLOG_CAP, Math.max(1, config.webhooks.max)) : [],
    webhookWorker: webhookWorker && (() => webhookWorker.stats()),
  });
  const health = new HealthService(() => orm, () => poolStats(pool, config.database.poolMax), (ms) => metrics.observePing(ms));
  events.on('operation', (report: OperationReport) => metrics.observeOperation(report));
  const limiter = new RateLimiter(config.limits.rateLimitPointsPerMinute);
  const clientAddress = clientAddressResolver(config.trustProxy);
  const authenticator = config.auth ? new Authenticator(config.auth) : undefined;
  const endpoint = new GraphQLEndpoint({
    operations,
    events,
    authenticator,
    clientAddress,
    operationTimeoutMs: config.limits.operationTimeoutMs,
    replicas,
  });
  if (!config.auth && config.nodeEnv === 'production') {
    log.warn('authentication is off (no AUTH_JWT_SECRET or AUTH_JWKS_URL) while NODE_ENV=production: anyone who reaches the port can read and change tasks');
  }

  const http = createHttpServer(log, config.limits.maxBodyBytes, {
    acceptingOperations: () => state === 'ready' || (state === 'draining' && endpoint.attached),
    draining: () => state === 'draining' || state === 'stopped',
    unavailableCode: () => (state === 'booting' ? 'STARTING' : 'SHUTTING_DOWN'),
    unavailableReason: () => (state === 'booting' ? 'the server is starting' : 'the server is shutting down'),
    readiness: async () => {
      if (state !== 'ready') return { ready: false, reason: (state === 'booting' && bootWaitReason) || state };
      if (guard.state() === 'open') return { ready: false, reason: 'circuit breaker open: the database is failing' };
      const h = await health.check();
      // Replicas are reported, never required: their reads go to the primary while none is up.
      const replicaStatus = replicas ? { replicas: replicas.status() } : {};
      return h.database ? { ready: true, ...replicaStatus } : { ready: false, reason: 'database not reachable', ...replicaStatus };
    },
    metrics: () => metrics.render(),
    metricsToken: config.metricsToken,
    cors: config.cors,
    graphql: (req, reply) => endpoint.handle(req, reply),
  });

  if (config.limits.playground) registerPlayground(http as unknown as FastifyInstance);
  const subscriptions = new Subscriptions({
    log,
    limits: config.limits,
    nodeEnv: config.nodeEnv,
    clientAddress,
    authenticator,
    limiter,
    accepting: () => state === 'ready',
    cors: config.cors,
  });
  subscriptions.bind(http.server);
  if (webhookWorker) subscriptions.onWake(() => webhookWorker.wakeFeed());
  await http.listen({ port: config.port, host: config.host });
  const address = http.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`;
  log.info({ url }, 'listening; booting (readiness 503 until the database is ready)');

  const boot = async () => {
    const started = Date.now();
    let clientUrl: string;
    if (config.database.source.kind === 'embedded') {
      embedded = await startEmbeddedPostgres({ ...config.database.source, log });
      clientUrl = embedded.url;
    } else {
      clientUrl = config.database.source.url;
    }
    if (bootAbort.signal.aborted) return;
    orm = await createOrm(
      ormOptions({ database: config.database, entities: ENTITIES, clientUrl, log, operations, guard, onQuery: (ms) => metrics.observeQuery(ms), replicas }),
    );
    const primaryPool = await orm.em.getConnection().getNativeClient();
    pool = primaryPool;
    // Straight to the pool: the probe must not go through the breaker it probes for.
    guard.setProbe(() => primaryPool.query('select 1'));
    stopPoolWatch = watchPool(primaryPool, log, operations, config.database.leakWarningMs);
    log.info({ min: config.database.poolMin, max: config.database.poolMax }, 'database pool opened');
    await waitForDatabase(orm, config.database.connectDeadlineMs, log, bootAbort.signal);
    if (bootAbort.signal.aborted) return;
    const open = await openPoolMinimum(orm, config.database.poolMin, log);
    log.info({ open, min: config.database.poolMin }, 'database pool holds its minimum');
    // Behind PgBouncer migrations cannot run (no session lock, and the migrator's second connection deadlocks):
    // they are a deploy step (`npm run migrate`), and the server waits until it has run.
    if (config.database.pgbouncer) {
      await waitForSchema(orm, log, bootAbort.signal, (reason) => (bootWaitReason = reason));
      await checkDefaultStatementTimeout(orm, config.database.statementTimeoutMs, log);
    } else await migrate(orm, log);
    if (bootAbort.signal.aborted) return;
    replicaMonitor?.start();
    let schema: GraphQLSchema | undefined;
    apollo = createApollo({ nodeEnv: config.nodeEnv, log, limits: config.limits, limiter, onSchema: (s) => (schema = s) });
    await apollo.start();
    endpoint.attach(apollo, orm.em, { health, transactions, webhooks });
    if (!schema) throw new Error('Apollo started without handing out its schema');
    // The listener needs a direct connection: LISTEN through PgBouncer never delivers (DATABASE_MIGRATION_URL).
    const listenerUrl = embedded ? clientUrl : (config.database.directUrl ?? clientUrl);
    await subscriptions.start({ schema, root: orm.em, services: { health, transactions, webhooks } }, listenerUrl, config.database.applicationName);
    if (webhookWorker && !bootAbort.signal.aborted) {
      webhookWorker.start(orm.em);
      webhooksChanged = () => webhookWorker.changed();
    }
    if (state === 'booting') state = 'ready';
    log.info({ bootMs: Date.now() - started }, 'ready');
  };
  const ready = boot().catch((err: unknown) => {
    if (bootAbort.signal.aborted) return;
    log.error({ err }, `boot failed: ${err instanceof Error ? err.message : String(err)}`);
    throw err;
  });
  ready.catch(() => undefined); // observed by the caller; never an unhandled rejection here

  /**
   * Closes what is open after HTTP: Apollo, the pool, the embedded database. Returns false when the pool did not
   * close within `closeTimeoutMs`.
   */
  const closeBackends = async (closeTimeoutMs: number): Promise<boolean> => {
    let clean = true;
    guard.stop();
    stopPoolWatch?.();
    // Before the pools close (orm.close() closes the replica pools too, once): no probe may use a closed pool.
    await replicaMonitor?.stop();
    await apollo?.stop().catch((err: unknown) => log.warn({ err }, 'apollo stop failed'));
    if (orm) {
      const closed = await closeOrm(orm, closeTimeoutMs);
      if (closed) log.info('database pool closed');
      else {
        clean = false;
        log.warn({ timeoutMs: closeTimeoutMs }, 'database pool did not close in time');
      }
    }
    await embedded?.stop();
    return clean;
  };

  let stopping: Promise<StopResult> | undefined;
  let emergency: Promise<StopResult> | undefined;

  const emergencyStop = (reason: string): Promise<StopResult> => {
    emergency ??= (async () => {
      state = 'draining';
      bootAbort.abort();
      log.warn({ reason }, 'emergency shutdown');
      for (const op of operations.snapshot()) log.warn(op, 'still in flight at emergency shutdown');
      const stats = poolStats(pool, config.database.poolMax);
      log.warn({ pool: stats }, `pool connections in use at emergency shutdown: ${stats.used}`);
      // Nothing below may hold the exit: a frozen backend makes the pool, the listener and Apollo's drain wait
      // forever. PostgreSQL (when embedded) is told to stop at once; the rest gets a bounded moment, then is left.
      embedded?.kill();
      http.server.closeAllConnections();
      // In-flight webhook requests are cut: whoever leases the webhook next sends them again (at least once).
      const bestEffort = Promise.allSettled([subscriptions.terminate(), http.close(), webhookWorker?.terminate()]);
      await within(EMERGENCY_CLOSE_MS, bestEffort);
      // Left running, not awaited: in a test process the pool still closes once its connections come back.
      void apollo?.stop().catch(() => undefined);
      void orm?.close(true).catch(() => undefined);
      state = 'stopped';
      log.warn('stopped after emergency shutdown');
      return { clean: false };
    })();
    return emergency;
  };

  const stop = (): Promise<StopResult> => {
    stopping ??= (async (): Promise<StopResult> => {
      const started = Date.now();
      const wasBooting = state === 'booting';
      state = 'draining';
      bootAbort.abort();
      const delayMs = wasBooting ? 0 : config.shutdown.delayMs;
      // Everything graceful (delay, drain, closing) fits in delay + grace; past that the emergency path ends it.
      const deadline = started + delayMs + config.shutdown.graceMs;
      const left = () => Math.max(0, deadline - Date.now());
      log.info({ delayMs: config.shutdown.delayMs, graceMs: config.shutdown.graceMs }, 'shutdown started: readiness is now 503');
      // The webhook worker stops at once (no new attempts; those in flight finish and are recorded, then its leases
      // are released for another instance), alongside the delay and the drain; the pool closes only after it.
      const workerStopped = webhookWorker?.stop() ?? Promise.resolve();
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      const drained = await within(
        left(),
        // WebSockets first (1001 Going Away, the listener closed): they would hold the HTTP server open otherwise.
        // Then requests; then executions that outlived their response (OPERATION_TIMEOUT_MS answers).
        Promise.all([subscriptions.close().then(() => http.close()).then(() => operations.idle()), workerStopped]).then(() => true),
      );
      if (emergency) return emergency;
      if (!drained) return emergencyStop(`operations or webhook deliveries still running after SHUTDOWN_GRACE_MS (${config.shutdown.graceMs} ms)`);
      log.info({ inFlight: operations.size }, 'http server closed; in-flight operations drained');
      const closed = await within(
        left(),
        ready.catch(() => undefined).then(() => closeBackends(Math.min(config.database.closeTimeoutMs, left()))),
      );
      if (emergency) return emergency;
      if (closed === undefined) return emergencyStop(`closing the database took past SHUTDOWN_GRACE_MS (${config.shutdown.graceMs} ms)`);
      state = 'stopped';
      log.info({ shutdownMs: Date.now() - started }, closed ? 'shutdown complete' : 'shutdown finished with timeouts');
      return { clean: closed };
    })();
    return stopping;
  };

  return {
    url,
    log,
    ready,
    events,
    state: () => state,
    orm: () => orm,
    stop,
    emergencyStop,
  };
}
