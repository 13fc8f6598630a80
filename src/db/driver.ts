/**
 * The PostgreSQL driver with the app's resilience around it: every statement and transaction start goes through
 * the circuit breaker, and a read outside a transaction whose connection died (backend terminated, connection
 * reset) is retried once on a fresh connection. Writes and statements inside transactions are never retried
 * here: their outcome is unknown once the connection is gone, and a mutation must not be applied twice.
 */
import { AbstractSqlDriver, PostgreSqlConnection, PostgreSqlPlatform, type Knex } from '@mikro-orm/postgresql';
import type { Configuration } from '@mikro-orm/core';
import type { Logger } from '../logger.js';
import { isConnectionError } from '../graphql/errors.js';
import type { DatabaseGuard } from './guard.js';

type ExecuteArgs = Parameters<PostgreSqlConnection['execute']>;

/** Pause before retrying on a fresh connection. */
const RETRY_PAUSE_MS = 50;

/** What hand-written SQL (src/db/sql.ts) uses to go through the same breaker and read retry. */
export interface GuardedConnection {
  /** Runs `call` through the breaker; when `retryable`, a connection-level failure is retried once. */
  guarded<T>(call: () => Promise<T>, retryable: boolean): Promise<T>;
}

export function isGuarded(connection: object): connection is GuardedConnection {
  return typeof (connection as Partial<GuardedConnection>).guarded === 'function';
}
type BeginArgs = Parameters<PostgreSqlConnection['begin']>;

/** A statement that only reads: safe to send again. */
export function isReadOnlyStatement(sqlText: string): boolean {
  const text = sqlText.trimStart().toLowerCase();
  return (text.startsWith('select') || text.startsWith('with')) && !/\b(insert|update|delete|for\s+(no\s+key\s+)?update|for\s+(key\s+)?share|nextval|setval|pg_advisory)\b/.test(text);
}

function sqlOf(query: ExecuteArgs[0]): string {
  return typeof query === 'string' ? query : query.toSQL().sql;
}

/** Builds the driver class for one app (it closes over that app's guard and logger: no shared state). */
export function resilientDriver(guard: DatabaseGuard, log: Logger): new (config: Configuration) => AbstractSqlDriver<PostgreSqlConnection, PostgreSqlPlatform> {
  class ResilientConnection extends PostgreSqlConnection implements GuardedConnection {
    override async execute<T>(...args: ExecuteArgs): Promise<T> {
      const query = args[0];
      const inTransaction = args[3] !== undefined && args[3] !== null;
      return this.guarded(() => super.execute(...args) as Promise<T>, !inTransaction && isReadOnlyStatement(sqlOf(query)));
    }

    guarded<T>(call: () => Promise<T>, retryable: boolean): Promise<T> {
      const once = () => guard.run(call);
      return once().catch(async (err: unknown) => {
        if (!retryable || !isConnectionError(err)) throw err;
        log.warn({ err }, 'read failed on a dead connection: retrying once on a fresh one');
        // The dead connection may be back in the pool for a moment before its close event marks it unusable;
        // a short pause lets the pool discard it, so the retry gets a fresh one.
        await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
        return once();
      });
    }

    override async begin(...args: BeginArgs): Promise<Knex.Transaction> {
      const [options] = args;
      // A savepoint inside a transaction reuses its connection; only a new transaction needs the pool.
      if (options?.ctx) return super.begin(...args);
      // A BEGIN that fails on a dead connection ran nothing of the transaction: safe to try once more.
      return this.guarded(() => super.begin(...args), true);
    }
  }

  return class ResilientPostgreSqlDriver extends AbstractSqlDriver<PostgreSqlConnection, PostgreSqlPlatform> {
    constructor(config: Configuration) {
      super(config, new PostgreSqlPlatform(), ResilientConnection, ['knex', 'pg']);
    }
  };
}

