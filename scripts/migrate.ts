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
import { migrate, waitForDatabase } from '../src/db/orm.js';
import { withMigrationDatabase } from './migration-database.js';

const config = loadConfigOrExit();
const log = createLogger(config.log).child({ component: 'migrate' });

async function run(): Promise<void> {
  await withMigrationDatabase(config, log, async (orm, url) => {
    log.info({ database: new URL(url).pathname.slice(1), host: new URL(url).host }, 'migrating');
    await waitForDatabase(orm, config.database.connectDeadlineMs, log, new AbortController().signal);
    await migrate(orm, log);
  });
}

try {
  await run();
  process.exitCode = 0;
} catch (err) {
  log.error({ err }, `migration failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
