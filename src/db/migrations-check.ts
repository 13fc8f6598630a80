/**
 * The schema check of a server that does not migrate at boot (PgBouncer mode): which of the code's migrations the
 * database has not applied yet, found without writing anything, and the wait until there are none.
 *
 * MikroORM's `getPendingMigrations()` is not used here: it creates the migrations table when it is missing (DDL
 * through PgBouncer, racing the migrate command that is about to create it) and checks that the database exists
 * by the URL's database name, which behind PgBouncer is an alias and may name no real database.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from '../logger.js';
import { backoffDelay, BootError, MIGRATIONS_DIR } from './orm.js';

/** What MikroORM's migrator loads from the migrations folder: every .ts/.js/.cjs file but declarations. */
const MIGRATION_FILE = /^(?!.*\.d\.ts$)(.+)\.(ts|js|cjs)$/;

/** The names of the migrations the code has, oldest first (names carry a timestamp), as the migrator records them. */
export async function codeMigrations(orm: MikroORM): Promise<string[]> {
  const dir = path.resolve(orm.config.get('baseDir'), MIGRATIONS_DIR);
  const names = (await readdir(dir)).flatMap((file) => MIGRATION_FILE.exec(file)?.[1] ?? []);
  return names.sort();
}

/** The names the database has recorded as applied; none when the migrations table does not exist yet. */
export async function appliedMigrations(orm: MikroORM): Promise<string[]> {
  const table = orm.config.get('migrations').tableName ?? 'mikro_orm_migrations';
  const connection = orm.em.fork().getConnection();
  const [found] = await connection.execute<Array<{ exists: boolean }>>('select to_regclass(?) is not null as exists', [table]);
  if (!found?.exists) return [];
  const rows = await connection.execute<Array<{ name: string }>>(`select name from ${connection.getPlatform().quoteIdentifier(table)}`);
  // Older MikroORM versions recorded the file extension too.
  return rows.map((r) => r.name.replace(/\.(ts|js|cjs)$/, ''));
}

/** The code's migrations the database has not applied, oldest first. */
export async function pendingMigrations(orm: MikroORM): Promise<string[]> {
  const [code, applied] = await Promise.all([codeMigrations(orm), appliedMigrations(orm)]);
  const done = new Set(applied);
  return code.filter((name) => !done.has(name));
}

/**
 * Waits until the database has every migration of the code, re-checking with backoff (capped at 5 s). The process
 * stays alive and not ready meanwhile (a supervisor sees no crash loop): `onWaiting` receives the readiness reason.
 * A database ahead of the code (a newer release migrated it) is fine: migrations only add.
 *
 * @throws BootError when `signal` aborts (the server is stopping).
 */
export async function waitForSchema(orm: MikroORM, log: Logger, signal: AbortSignal, onWaiting: (reason: string | undefined) => void): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    if (signal.aborted) throw new BootError('boot aborted: the server is stopping');
    const pending = await pendingMigrations(orm);
    if (pending.length === 0) {
      onWaiting(undefined);
      log.info('schema is up to date');
      return;
    }
    const reason = `${pending.length} pending migration(s): run \`npm run migrate\` (on DATABASE_MIGRATION_URL)`;
    onWaiting(reason);
    const delay = 500 + backoffDelay(attempt, 250, 4500);
    log.error({ pending, retryInMs: Math.round(delay) }, `schema is behind the code: ${reason}; the server stays not ready until then`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, delay);
      signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
  }
}
