/**
 * The database the migration commands (`npm run migrate`, `npm run migration:create`) work on: a direct connection
 * (`DATABASE_MIGRATION_URL`, else `DATABASE_URL` / `POSTGRES_*`: never PgBouncer, the migrator holds session
 * state), or with nothing configured the embedded PostgreSQL under EMBEDDED_PG_DATA_DIR, started for the command
 * and stopped after it (a server using that directory must be stopped first).
 */
import type { MikroORM, Options } from '@mikro-orm/postgresql';
import type { Config } from '../src/config.js';
import type { Logger } from '../src/logger.js';
import { closeOrm, createOrm, ormOptions } from '../src/db/orm.js';
import { ENTITIES } from '../src/entities.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/db/embedded.js';
import { OperationRegistry } from '../src/lifecycle/operations.js';

/**
 * Opens the ORM on the migration database, runs `work`, and closes everything again, whatever `work` does.
 *
 * @param adjust changes to the server's ORM options (the snapshot setting of `migration:create`)
 */
export async function withMigrationDatabase<T>(
  config: Config,
  log: Logger,
  work: (orm: MikroORM, url: string) => Promise<T>,
  adjust: (options: Options) => Options = (options) => options,
): Promise<T> {
  let embedded: EmbeddedPostgres | undefined;
  let url = config.database.directUrl;
  if (url === undefined) {
    if (config.database.source.kind !== 'embedded') throw new Error('no database URL configured');
    embedded = await startEmbeddedPostgres({ ...config.database.source, log });
    url = embedded.url;
  }
  try {
    const orm = await createOrm(adjust(ormOptions({ database: config.database, entities: ENTITIES, clientUrl: url, log, operations: new OperationRegistry(), direct: true })));
    try {
      return await work(orm, url);
    } finally {
      await closeOrm(orm, config.database.closeTimeoutMs);
    }
  } finally {
    await embedded?.stop();
  }
}
