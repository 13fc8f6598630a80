/**
 * The one MikroORM instance of a process: its options, how it is opened (waiting for the database with backoff),
 * and how it is closed (raced against a timeout, because `orm.close()` waits forever for an open transaction).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MikroORM, PostgreSqlDriver, type Options, type PostgreSqlConnection } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { OperationRegistry } from '../lifecycle/operations.js';
import { PinoOrmLogger } from './orm-logger.js';
import { isReplicaAware, resilientDriver } from './driver.js';
import type { DatabaseGuard } from './guard.js';
import type { ReplicaRouter } from './replicas.js';

const HERE = fileURLToPath(import.meta.url);

/**
 * Whether this process runs the compiled JavaScript of `npm run build` (`dist/`) rather than the TypeScript
 * sources under tsx or vitest: it then loads the compiled migrations.
 */
export const COMPILED = HERE.endsWith('.js');

/**
 * The repository root (the nearest folder with a package.json, from `src/db/` or `dist/src/db/`): the schema, the
 * playground bundle and the migrations are found relative to it, whatever the working directory.
 */
export const PROJECT_ROOT = (() => {
  for (let dir = path.dirname(HERE); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${HERE}`);
  }
})();

/** The migrations folder, relative to {@link PROJECT_ROOT}: the TypeScript sources, or their build. */
export const MIGRATIONS_DIR = COMPILED ? './dist/migrations' : './migrations';

export interface OrmOptionsInput {
  database: Config['database'];
  /** The entities to map (src/entities.ts lists the application's): the data layer does not know them itself. */
  entities: NonNullable<Options['entities']>;
  clientUrl: string;
  log: Logger;
  operations: OperationRegistry;
  /** The circuit breaker statements go through; without it (the CLI) the plain driver is used. */
  guard?: DatabaseGuard;
  /** Called with each statement's duration in ms (metrics). */
  onQuery?: (tookMs: number) => void;
  /** `clientUrl` is a direct connection even when `database.pgbouncer` is on (migrations, the CLI). */
  direct?: boolean;
  /** Routes reads to the replicas of `database.replicaUrls` (with the guard only; the CLI uses the primary alone). */
  replicas?: ReplicaRouter;
}

/** Builds the ORM options from configuration. Used by the server and by `mikro-orm.config.ts` (the CLI). */
export function ormOptions({ database, entities, clientUrl, log, operations, guard, onQuery, direct = false, replicas }: OrmOptionsInput): Options {
  // PgBouncer (transaction pooling) refuses every startup parameter but application_name; the timeout is then set
  // per transaction by the TransactionRunner (SET LOCAL) and, for reads outside transactions, on the role.
  const viaPgBouncer = database.pgbouncer && !direct;
  return {
    // Prepared statements live on a server connection: behind PgBouncer's transaction pooling that is not ours.
    driver: guard ? resilientDriver(guard, log, replicas, { preparedStatements: !viaPgBouncer }) : PostgreSqlDriver,
    // Each replica gets a pool like the primary's (same pool and driver options); the router picks per request.
    ...(guard && replicas ? { replicas: database.replicaUrls.map((url, i) => ({ name: `replica-${i}`, clientUrl: url })), preferReadReplicas: true } : {}),
    entities,
    clientUrl,
    baseDir: PROJECT_ROOT,
    allowGlobalContext: false,
    ensureDatabase: false,
    // Reflection-free entities (defineEntity); nothing to cache on disk.
    metadataCache: { enabled: false },
    discovery: { warnWhenNoEntities: true },
    forceUtcTimezone: true,
    // pg's pool (MikroORM 7 hands these to `pg.Pool`): it grows on demand up to `max` and closes connections idle
    // for 30 s while more than `min` are open. It opens none by itself: `openPoolMinimum` does at boot.
    pool: {
      min: database.poolMin,
      max: database.poolMax,
      idleTimeoutMillis: 30_000,
    },
    // Straight to `pg.Pool` and each `pg.Client` it opens.
    driverOptions: {
      application_name: database.applicationName,
      ...(viaPgBouncer ? {} : { statement_timeout: database.statementTimeoutMs }),
      // Client-side bounds for what statement_timeout cannot catch (a frozen backend or a dead network):
      // a read that gets no answer fails instead of hanging.
      ...(database.statementTimeoutMs > 0 ? { query_timeout: database.statementTimeoutMs + 1000 } : {}),
      // How long a request waits for a connection: for one to come free when all are in use (pool exhaustion), or
      // for a new one to open (the database not answering).
      connectionTimeoutMillis: database.acquireTimeoutMs,
      keepAlive: true,
    },
    // The change feed's NOTIFY trigger is written by a migration (raw SQL), not declared on an entity: MikroORM 7
    // reads triggers back from the database and would drop it in the next generated migration.
    schemaGenerator: { ignoreTriggers: true },
    extensions: [Migrator],
    // The migrator takes `pathTs` when `preferTs` is on: the sources under tsx, the build's .js files otherwise.
    preferTs: !COMPILED,
    migrations: {
      path: MIGRATIONS_DIR,
      pathTs: './migrations',
      emit: 'ts',
      snapshotName: '.snapshot',
      transactional: true,
      allOrNothing: true,
      // At runtime the committed snapshot is read-only; the CLI config turns snapshots back on.
      snapshot: false,
    },
    // .ts migrations load through the host's loader (tsx or vitest), not through a require hook.
    dynamicImportProvider: (id: string) => import(id),
    loggerFactory: (options) => new PinoOrmLogger(options, log.child({ component: 'orm' }), operations, onQuery),
  };
}

/**
 * Runs `create` with no `MIKRO_ORM_*` variable in the environment: MikroORM's constructor fills every option it was
 * not given from them (`MIKRO_ORM_HOST` would even override the host of `clientUrl`), and configuration must come
 * from `config.ts` alone. The constructor is synchronous, so nothing else runs while they are away.
 */
function withoutOrmVariables<T>(create: () => T): T {
  const hidden = Object.entries(process.env).filter(([key]) => key.startsWith('MIKRO_ORM_'));
  for (const [key] of hidden) delete process.env[key];
  try {
    return create();
  } finally {
    for (const [key, value] of hidden) process.env[key] = value;
  }
}

/**
 * Creates the ORM from `options` alone (see {@link withoutOrmVariables}) and opens its pools. Entities are given as
 * a list and extensions explicitly, so discovery runs in the constructor (MikroORM 7's synchronous path); the pools
 * open no connection until a statement needs one.
 */
export async function createOrm(options: Options): Promise<MikroORM> {
  const orm = withoutOrmVariables(() => new MikroORM({ ...options, discovery: { ...options.discovery, skipSyncDiscovery: false } }));
  await orm.connect();
  return orm;
}

/**
 * Opens `min` connections in the ORM's pools: pg's pool opens connections only on demand, and its `min` only stops
 * idle ones being closed below it. The primary's are awaited (the boot has just reached the database); each
 * replica's open in the background (a replica that cannot be reached now must not hold the boot: it opens them on
 * demand, and its monitor reports it). Resolves with how many connections the primary's pool holds.
 */
export async function openPoolMinimum(orm: MikroORM, min: number, log: Logger): Promise<number> {
  const fill = async (connection: PostgreSqlConnection): Promise<void> => {
    const pool = await connection.getNativeClient();
    // `min` held at once: idle ones are reused, the rest opened; all go back to the pool together.
    const opened = await Promise.allSettled(Array.from({ length: min }, () => pool.connect()));
    for (const c of opened) if (c.status === 'fulfilled') c.value.release();
    const failed = opened.find((c) => c.status === 'rejected');
    if (failed) throw failed.reason;
  };
  const driver = orm.em.getDriver();
  const primary = driver.getConnection('write');
  await fill(primary);
  if (isReplicaAware(driver)) {
    driver.replicaConnections().forEach((replica, i) => {
      fill(replica).catch((err: unknown) => log.debug({ err, replica: i }, 'could not open DB_POOL_MIN connections to a replica now: they open on demand'));
    });
  }
  return (await primary.getNativeClient()).totalCount;
}

/** SQLSTATEs that no amount of waiting fixes: wrong password, no such role or database. */
const FATAL_CONNECT_CODES: Record<string, string> = {
  '28P01': 'the password was rejected: check DATABASE_URL / POSTGRES_PASSWORD',
  '28000': 'the role is not allowed to connect: check DATABASE_URL / POSTGRES_USER',
  '3D000': 'the database does not exist: check DATABASE_URL / POSTGRES_DATABASE',
};

/** PgBouncer's answer to a startup parameter it does not pass on: the URL leads to PgBouncer, the mode is off. */
function fatalMessage(reason: string): string | undefined {
  const match = /unsupported startup parameter: (\w+)/.exec(reason);
  return match
    ? `PgBouncer refused the startup parameter ${match[1]}: set DB_PGBOUNCER=true (and DATABASE_MIGRATION_URL) when DATABASE_URL leads to PgBouncer`
    : undefined;
}

/** A boot failure that stops the process with one line. */
export class BootError extends Error {
  override name = 'BootError';
}

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Full-jitter exponential backoff: random in [0, min(cap, base * 2^attempt)]. */
export function backoffDelay(attempt: number, baseMs = 100, capMs = 5000): number {
  return Math.random() * Math.min(capMs, baseMs * 2 ** attempt);
}

/**
 * Waits until the database answers, retrying connection-level failures with backoff until `deadlineMs` passes.
 *
 * @throws BootError at once for a rejected password or a missing database, or when the deadline passes.
 */
export async function waitForDatabase(orm: MikroORM, deadlineMs: number, log: Logger, signal: AbortSignal): Promise<void> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    if (signal.aborted) throw new BootError('boot aborted: the server is stopping');
    const check = await orm.checkConnection();
    if (check.ok) {
      log.info({ attempts: attempt + 1, waitedMs: Date.now() - started }, 'database is reachable');
      return;
    }
    const code = sqlState(check.error);
    const fatal = (code ? FATAL_CONNECT_CODES[code] : undefined) ?? fatalMessage(check.reason);
    if (fatal) throw new BootError(`Cannot use the database: ${fatal}${code ? ` (SQLSTATE ${code})` : ''}`);
    const elapsed = Date.now() - started;
    if (elapsed >= deadlineMs) {
      throw new BootError(`The database did not answer within DB_CONNECT_DEADLINE_MS (${deadlineMs} ms): ${check.reason}`);
    }
    const delay = Math.min(backoffDelay(attempt), deadlineMs - elapsed);
    log.error({ attempt: attempt + 1, retryInMs: Math.round(delay), reason: check.reason }, 'database not reachable yet');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, delay);
      signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
  }
}

/** Advisory lock key for migrations: several instances booting at once migrate one at a time. */
const MIGRATION_LOCK_KEY = 7_264_911_001;

/**
 * Runs pending migrations inside one transaction that holds `pg_advisory_xact_lock`, so instances booting together
 * take turns and the later ones find nothing left to do.
 */
export async function migrate(orm: MikroORM, log: Logger): Promise<string[]> {
  const { migrator } = orm;
  const connection = orm.em.getConnection('write');
  // The connection's transaction: the migrator runs every migration inside it (as savepoints), and the lock is
  // held until it commits.
  const applied = await connection.transactional(async (transaction) => {
    await connection.execute('select pg_advisory_xact_lock(?)', [MIGRATION_LOCK_KEY], 'run', transaction);
    const done = await migrator.up({ transaction });
    return done.map((m) => m.name);
  });
  log.info({ applied }, applied.length ? 'migrations applied' : 'schema is up to date');
  return applied;
}

/**
 * Closes the ORM's pool, giving up after `timeoutMs` (an open transaction would make `close()` wait forever).
 *
 * @returns true when the pool closed in time.
 */
export async function closeOrm(orm: MikroORM, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  try {
    return await Promise.race([orm.close(true).then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
