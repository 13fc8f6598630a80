/**
 * Configuration for the MikroORM CLI (`npm run migration:up`, `npx mikro-orm ...`): the server's own ORM options,
 * read from the same validated configuration, with migration snapshots turned on so new migrations are diffed
 * against the committed `.snapshot.json` (`npm run migration:create` is scripts/migration-create.ts).
 */
import { defineConfig } from '@mikro-orm/postgresql';
import { loadConfig } from './src/config.js';
import { createLogger } from './src/logger.js';
import { ormOptions } from './src/db/orm.js';
import { ENTITIES } from './src/entities.js';
import { OperationRegistry } from './src/lifecycle/operations.js';

const config = loadConfig();
if (config.database.directUrl === undefined) {
  throw new Error('Migration commands need a database: set DATABASE_MIGRATION_URL or DATABASE_URL (or the POSTGRES_* variables)');
}
const options = ormOptions({
  database: config.database,
  entities: ENTITIES,
  // Never through PgBouncer: the migrator holds session state and opens a second connection.
  clientUrl: config.database.directUrl,
  direct: true,
  log: createLogger(config.log),
  operations: new OperationRegistry(),
});

export default defineConfig({
  ...options,
  // `migration:create` diffs the entities against the committed snapshot and updates it. `migration:up` leaves it
  // alone: MikroORM 7 would rewrite it from the migrated database, whose check constraints it reads back in a
  // form it then takes for changes.
  migrations: { ...options.migrations, snapshot: true, snapshotOnMigrate: false },
});
