/**
 * The one MikroORM instance of a process: its options, how it is opened (waiting for the database with backoff),
 * and how it is closed (raced against a timeout, because `orm.close()` waits forever for an open transaction).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MikroORM, PostgreSqlDriver, type Knex, type Options } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { OperationRegistry } from '../lifecycle/operations.js';
import { TaskSchema } from '../tasks/task.entity.js';
import { TaskDependencySchema } from '../tasks/dependency.entity.js';
import { TaskExecutionSchema } from '../tasks/execution.entity.js';
import { TaskEventSchema } from '../tasks/event.entity.js';
import { PinoOrmLogger } from './orm-logger.js';
import { resilientDriver } from './driver.js';
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

/** Every entity of the application. */
export const ENTITIES = [TaskSchema, TaskDependencySchema, TaskExecutionSchema, TaskEventSchema];

export interface OrmOptionsInput {
  database: Config['database'];
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
export function ormOptions({ database, clientUrl, log, operations, guard, onQuery, direct = false, replicas }: OrmOptionsInput): Options {
  // PgBouncer (transaction pooling) refuses every startup parameter but application_name; the timeout is then set
  // per transaction by the TransactionRunner (SET LOCAL) and, for reads outside transactions, on the role.
  const viaPgBouncer = database.pgbouncer && !direct;
  return {
    // Prepared statements live on a server connection: behind PgBouncer's transaction pooling that is not ours.
    driver: guard ? resilientDriver(guard, log, replicas, { preparedStatements: !viaPgBouncer }) : PostgreSqlDriver,
    // Each replica gets a pool like the primary's (same pool and driver options); the router picks per request.
    ...(guard && replicas ? { replicas: database.replicaUrls.map((url, i) => ({ name: `replica-${i}`, clientUrl: url })), preferReadReplicas: true } : {}),
    entities: ENTITIES,
    clientUrl,
    baseDir: PROJECT_ROOT,
    allowGlobalContext: false,
    ensureDatabase: false,
    // Reflection-free entities (defineEntity); nothing to cache on disk.
    metadataCache: { enabled: false },
    discovery: { warnWhenNoEntities: true },
    forceUtcTimezone: true,
    pool: {
      min: database.poolMin,
      max: database.poolMax,
      acquireTimeoutMillis: database.acquireTimeoutMs,
      // tarn reaps idle connections above `min`: the pool grows on demand and shrinks back.
      idleTimeoutMillis: 30_000,
    },
    driverOptions: {
      connection: {
        application_name: database.applicationName,
        ...(viaPgBouncer ? {} : { statement_timeout: database.statementTimeoutMs }),
        // Client-side bounds for what statement_timeout cannot catch (a frozen backend or a dead network):
        // a read that gets no answer fails instead of hanging, and so does a connection attempt.
        ...(database.statementTimeoutMs > 0 ? { query_timeout: database.statementTimeoutMs + 1000 } : {}),
        connectionTimeoutMillis: database.acquireTimeoutMs,
        keepAlive: true,
      },
      // knex reports a connection that died while idle ("Connection Error: ...") on the console; log it instead.
      log: {
        warn: (message: unknown) => log.warn({ component: 'knex' }, String(message)),
        error: (message: unknown) => log.error({ component: 'knex' }, String(message)),
        deprecate: (message: unknown) => log.debug({ component: 'knex' }, String(message)),
        debug: (message: unknown) => log.debug({ component: 'knex' }, String(message)),
      },
    },
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
 * Creates the ORM without `MikroORM.init`: `init` merges `.env` and `MIKRO_ORM_*` variables over the options it is
 * given, and configuration must come from `config.ts` alone. This is `init`'s sequence minus that step.
 */
export async function createOrm(options: Options): Promise<MikroORM> {
  const orm = new MikroORM(options);
  const allowGlobalContext = orm.config.get('allowGlobalContext');
  orm.config.set('allowGlobalContext', true); // discovery runs outside any request
  await orm.discoverEntities();
  orm.config.set('allowGlobalContext', allowGlobalContext);
  orm.em.getPlatform().init(orm);
  await orm.connect();
  for (const extension of orm.config.get('extensions')) extension.register(orm);
  return orm;
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
  const migrator = orm.getMigrator();
  // The connection's transaction, not em.transactional: that one would leave AsyncLocalStorage promise hooks
  // installed for the life of the process (src/db/transaction.ts).
  const applied = await orm.em.getConnection('write').transactional(async (transaction: Knex.Transaction) => {
    await transaction.raw('select pg_advisory_xact_lock(?)', [MIGRATION_LOCK_KEY]);
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
