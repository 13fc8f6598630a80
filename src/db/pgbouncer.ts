/**
 * What PgBouncer mode cannot do by itself: bound the statements sent outside a transaction (queries). Their
 * statement_timeout is whatever the server connection has by default, because a session `SET` would stay on
 * PgBouncer's server connection and leak to other clients. The default belongs on the role (or the database):
 * this check tells the operator at boot when it is missing or differs from DB_STATEMENT_TIMEOUT_MS.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from '../logger.js';

/**
 * Reads the default `statement_timeout` a statement outside a transaction gets, and logs a WARN with the fix when
 * it is not `expectedMs`. Never fails the boot: the client-side read timeout still bounds every statement.
 */
export async function checkDefaultStatementTimeout(orm: MikroORM, expectedMs: number, log: Logger): Promise<void> {
  const [row] = await orm.em
    .fork()
    .getConnection()
    .execute<Array<{ ms: string }>>("select setting as ms from pg_settings where name = 'statement_timeout'");
  const actualMs = Number(row?.ms);
  if (actualMs === expectedMs) return;
  log.warn(
    { defaultStatementTimeoutMs: actualMs, expectedMs },
    `behind PgBouncer, queries outside transactions get the role's default statement_timeout (${actualMs} ms), not DB_STATEMENT_TIMEOUT_MS: run ALTER ROLE <role> SET statement_timeout = ${expectedMs} (or set PgBouncer's query_timeout)`,
  );
}
