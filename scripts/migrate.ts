/**
 * `npm run migrate`: applies the pending migrations as a deploy step, then exits (0 done or nothing to do, 1 failed).
 *
 * Behind PgBouncer the server does not migrate at boot (DB_PGBOUNCER=true): this command does, on the direct
 * connection `DATABASE_MIGRATION_URL` (else `DATABASE_URL` / `POSTGRES_*`; with nothing configured, the embedded
 * PostgreSQL under EMBEDDED_PG_DATA_DIR, which must not be in use by a running server). It is the server's own
 * boot migration: one transaction holding `pg_advisory_xact_lock`, so running it from several places at once, or
 * beside servers booting without PgBouncer, applies each migration exactly once.
 */
import { loadConfigOrExit } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { closeOrm, createOrm, migrate, ormOptions, waitForDatabase } from '../src/db/orm.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/db/embedded.js';
import { OperationRegistry } from '../src/lifecycle/operations.js';

const config = loadConfigOrExit();
const log = createLogger(config.log).child({ component: 'migrate' });

async function run(): Promise<void> {
  let embedded: EmbeddedPostgres | undefined;
  let url = config.database.directUrl;
  if (url === undefined) {
    if (config.database.source.kind !== 'embedded') throw new Error('no database URL configured');
    embedded = await startEmbeddedPostgres({ ...config.database.source, log });
    url = embedded.url;
  }
  const orm = await createOrm(
    ormOptions({ database: config.database, clientUrl: url, log, operations: new OperationRegistry(), direct: true }),
  );
  try {
    log.info({ database: new URL(url).pathname.slice(1), host: new URL(url).host }, 'migrating');
    await waitForDatabase(orm, config.database.connectDeadlineMs, log, new AbortController().signal);
    await migrate(orm, log);
  } finally {
    await closeOrm(orm, config.database.closeTimeoutMs);
    await embedded?.stop();
  }
}

try {
  await run();
  process.exitCode = 0;
} catch (err) {
  log.error({ err }, `migration failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
