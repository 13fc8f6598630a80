/**
 * `npm run migration:create [-- --name add_due_reminders]`: writes a migration for what the entities changed since
 * the committed snapshot (`migrations/.snapshot.json`), and updates the snapshot. With `--check` it writes nothing
 * and exits 1 when a migration is needed (for CI and tests).
 *
 * It connects to `DATABASE_MIGRATION_URL` (else `DATABASE_URL` / `POSTGRES_*`); with nothing configured it starts
 * the embedded PostgreSQL under EMBEDDED_PG_DATA_DIR itself (stop a server using that directory first), so a
 * contributor with nothing but Node can add a migration.
 */
import { parseArgs } from 'node:util';
import { loadConfigOrExit } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { withMigrationDatabase } from './migration-database.js';

const { values } = parseArgs({
  options: { name: { type: 'string' }, blank: { type: 'boolean', default: false }, check: { type: 'boolean', default: false } },
});
const config = loadConfigOrExit();
const log = createLogger(config.log).child({ component: 'migration:create' });

/** The file written, `undefined` when nothing changed, or `needed` under `--check` when something did. */
function run(): Promise<string | undefined> {
  return withMigrationDatabase(
    config,
    log,
    async (orm) => {
      if (values.check) return (await orm.migrator.checkSchema()) ? 'needed' : undefined;
      const { fileName } = await orm.migrator.create(undefined, values.blank, false, values.name);
      return fileName || undefined;
    },
    // The snapshot is what a new migration is diffed against, so here (and only here) it is written.
    (options) => ({ ...options, migrations: { ...options.migrations, snapshot: true } }),
  );
}

try {
  const fileName = await run();
  if (fileName === 'needed') {
    log.error('the entities changed since the committed snapshot: run npm run migration:create and commit the migration');
    process.exitCode = 1;
  } else {
    log.info({ fileName }, fileName ? `created migrations/${fileName}` : 'the entities match the snapshot: no migration needed');
    process.exitCode = 0;
  }
} catch (err) {
  log.error({ err }, `migration:create failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
