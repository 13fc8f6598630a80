/**
 * The PostgreSQL driver with the app's resilience around it: every statement and transaction start goes through
 * the circuit breaker, and a read outside a transaction whose connection died (backend terminated, connection
 * reset) is retried once on a fresh connection. Writes and statements inside transactions are never retried
 * here: their outcome is unknown once the connection is gone, and a mutation must not be applied twice.
 *
 * With read replicas (DATABASE_REPLICA_URLS), `getConnection('read')` asks the app's {@link ReplicaRouter} where
 * the current request reads (src/db/replicas.ts). Replica connections do not go through the primary's breaker: a
 * read that fails there at the connection level takes the replica out of rotation and runs again on the primary.
 */
import { createHash } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { PoolClient } from 'pg';
import {
  AbstractSqlDriver,
  EntityManager as PostgreSqlEntityManager,
  MikroORM as PostgreSqlMikroORM,
  PostgreSqlConnection,
  PostgreSqlPlatform,
  type PostgreSqlDriver,
} from '@mikro-orm/postgresql';
import { EntityManagerType, type AnyEntity, type Configuration, type ConnectionType, type Constructor, type EntityData, type QueryResult } from '@mikro-orm/core';
import type { Logger } from '../logger.js';
import { isConnectionError, isPoolExhausted, sqlStateOf } from './errors.js';
import type { DatabaseGuard } from './guard.js';
import type { ReplicaRouter, RunSql } from './replicas.js';

type ExecuteArgs = Parameters<PostgreSqlConnection['execute']>;
/** What MikroORM's `execute` may resolve to (its own constraint on the result type). */
type ExecuteResult = QueryResult | EntityData<AnyEntity> | Array<EntityData<AnyEntity>>;

/** Pause before retrying on a fresh connection. */
const RETRY_PAUSE_MS = 50;

/** What hand-written SQL (src/db/sql.ts) uses to go through the same breaker, read retry and replica fallback. */
export interface GuardedConnection {
  /**
   * Runs `call` through the breaker; when `retryable`, a connection-level failure is retried once. `call` is given
   * the connection to run on: this one, or the primary when a replica failed.
   */
  guarded<T>(call: (connection: PostgreSqlConnection) => Promise<T>, retryable: boolean): Promise<T>;
  /**
   * The name to prepare hand-written statement `text` under on each connection (PostgreSQL then parses and plans it
   * once per connection, not on every run), or undefined to send it unnamed: prepared statements are off (behind
   * PgBouncer's transaction pooling a connection is not ours to keep them on) or this app already names
   * {@link MAX_PREPARED_STATEMENTS} texts.
   */
  statementName(text: string): string | undefined;
  /**
   * Judges a failure of named statement `text`: true when it is the preparation that failed, not the statement,
   * so the statement can run again unnamed. A plan whose result changed (a migration added a column under a
   * `select *`) stops the naming of that text; a prepared statement the server does not have, or already has
   * (a pooler swapped the server connection) stops all naming.
   */
  preparationFailed(err: unknown, text: string): boolean;
  /**
   * Checks out a connection of this pool and runs BEGIN on it, through the breaker (a BEGIN that failed on a dead
   * connection ran nothing: it is tried once more); the request's later reads go to the primary. The caller owns
   * the connection until it commits or rolls back and releases it (src/db/sql.ts, `transaction`).
   */
  beginTransaction(): Promise<PoolClient>;
}

/** SQLSTATEs of a named statement that failed as a prepared statement, not as a statement (see preparationFailed). */
export const PREPARATION_FAILURES: ReadonlySet<string> = new Set(['0A000', '26000', '42P05']);

/**
 * The most distinct statement texts an app prepares. Every connection may end up holding each of them (pg keeps
 * them for the connection's life, PostgreSQL keeps their plans), so the number is bounded; texts past it run
 * unnamed. Our statements' texts depend on the shape of a request (which filters, how many values in a list),
 * not on its values: a few dozen in the benchmark.
 */
export const MAX_PREPARED_STATEMENTS = 500;

/** A driver of {@link resilientDriver}, which lists its replicas' connections. */
export interface ReplicaAwareDriver {
  replicaConnections(): readonly PostgreSqlConnection[];
}

/** Whether `driver` is one of {@link resilientDriver}'s (the CLI's plain driver is not). */
export function isReplicaAware(driver: object): driver is ReplicaAwareDriver {
  return typeof (driver as Partial<ReplicaAwareDriver>).replicaConnections === 'function';
}

export function isGuarded(connection: object): connection is GuardedConnection {
  return typeof (connection as Partial<GuardedConnection>).guarded === 'function';
}
type BeginArgs = Parameters<PostgreSqlConnection['begin']>;
type Begun = ReturnType<PostgreSqlConnection['begin']>;

/** A statement that only reads: safe to send again. */
export function isReadOnlyStatement(sqlText: string): boolean {
  const text = sqlText.trimStart().toLowerCase();
  return (text.startsWith('select') || text.startsWith('with')) && !/\b(insert|update|delete|for\s+(no\s+key\s+)?update|for\s+(key\s+)?share|nextval|setval|pg_advisory)\b/.test(text);
}

/** The SQL text of what MikroORM hands `execute`: a string, a raw fragment, or its native query builder. */
function sqlOf(query: ExecuteArgs[0]): string {
  if (typeof query === 'string') return query;
  return 'toRaw' in query ? query.toRaw().sql : query.sql;
}

/** A replica read failure that says the replica (not the statement) is the problem. */
function isReplicaDown(err: unknown): boolean {
  return isPoolExhausted(err) || isConnectionError(err);
}

/** Checks a connection out of `connection`'s pool (pg's) and starts a transaction on it. */
async function beginOn(connection: PostgreSqlConnection): Promise<PoolClient> {
  const client = await (await connection.getNativeClient()).connect();
  try {
    await client.query('begin');
    return client;
  } catch (err) {
    // A connection whose BEGIN failed is not given back for reuse.
    client.release(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
}

/** A hot-standby conflict (`canceling statement due to conflict with recovery`): the primary has no such conflict. */
function isRecoveryConflict(err: unknown): boolean {
  return sqlStateOf(err) === '40001' && /conflict with recovery/.test(String((err as { message?: unknown } | null)?.message));
}

/**
 * Builds the driver class for one app (it closes over that app's guard, logger and replica router: no shared
 * state). Without a router, or with no replicas configured, every statement goes to the primary.
 */
export function resilientDriver(
  guard: DatabaseGuard,
  log: Logger,
  router?: ReplicaRouter,
  { preparedStatements = true }: { preparedStatements?: boolean } = {},
): new (config: Configuration) => PostgreSqlDriver {
  // Names are a hash of the text, so every connection (primary or replica) uses the same name for the same text.
  const names = new Map<string, string>();
  /** Texts whose prepared plan broke (their result changed under them): they run unnamed from then on. */
  const unnamed = new Set<string>();
  let naming = preparedStatements;
  const statementName = (text: string): string | undefined => {
    if (!naming || unnamed.has(text)) return undefined;
    let name = names.get(text);
    if (name === undefined && names.size < MAX_PREPARED_STATEMENTS) {
      name = `tt_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
      names.set(text, name);
    }
    return name;
  };

  class ResilientConnection extends PostgreSqlConnection implements GuardedConnection {
    /** Set by the driver on replica connections: which replica, and the primary to fall back to. */
    replica: { index: number; primary: ResilientConnection } | undefined;
    /** The pg connections this pool opened that have not closed yet (see {@link close}). */
    private readonly open = new Set<EventEmitter>();
    private drained: (() => void) | undefined;

    override async connect(...args: Parameters<PostgreSqlConnection['connect']>): Promise<void> {
      await super.connect(...args);
      // MikroORM makes the pool here, with no connection yet: each one it opens from now on is watched until closed.
      (await this.getNativeClient()).on('connect', (client) => {
        this.open.add(client);
        client.once('end', () => {
          this.open.delete(client);
          if (this.open.size === 0) this.drained?.();
        });
      });
    }

    /**
     * Closes the pool and resolves once every connection it opened has closed: pg's `pool.end()` resolves when it
     * has asked each one to close, before their sockets have, and a closed ORM must leave no session behind.
     */
    override async close(force?: boolean): Promise<void> {
      const pool = this.connected ? await this.getNativeClient() : undefined;
      const closed = this.open.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.drained = resolve));
      await super.close(force);
      // MikroORM closes the pool through Kysely, which ends it only if Kysely ever ran a statement on it; a replica's
      // pool may have served only our own statements (src/db/sql.ts) and the replica monitor's.
      if (pool && !pool.ending) await pool.end();
      await closed;
      this.drained = undefined;
    }

    override async execute<T extends ExecuteResult = Array<EntityData<AnyEntity>>>(...args: ExecuteArgs): Promise<T> {
      const query = args[0];
      const inTransaction = args[3] !== undefined && args[3] !== null;
      const readOnly = isReadOnlyStatement(sqlOf(query));
      if (this.replica) {
        // A transaction's statements carry the primary's transaction; a write never belongs on a replica.
        const { primary } = this.replica;
        if (inTransaction || !readOnly) return primary.execute<T>(...args);
        return this.onReplica(() => super.execute<T>(...args), () => primary.execute<T>(...args));
      }
      return this.guarded(() => super.execute<T>(...args), !inTransaction && readOnly);
    }

    /** MikroORM's transactions (the migrations'): through the same breaker and routing as ours. */
    override async begin(...args: BeginArgs): Begun {
      const [options] = args;
      // A savepoint inside a transaction reuses its connection; only a new transaction needs the pool.
      if (options?.ctx) return super.begin(...args);
      // The request now writes: its later reads must see this transaction, so they go to the primary.
      router?.noteWrite();
      // A BEGIN that fails on a dead connection ran nothing of the transaction: safe to try once more.
      return this.guarded(() => super.begin(...args), true);
    }

    beginTransaction(): Promise<PoolClient> {
      if (this.replica) return this.replica.primary.beginTransaction();
      router?.noteWrite();
      return this.guarded((c) => beginOn(c), true);
    }

    statementName(text: string): string | undefined {
      return statementName(text);
    }

    preparationFailed(err: unknown, text: string): boolean {
      const { code, message } = err as { code?: unknown; message?: unknown };
      if (code === '0A000' && typeof message === 'string' && message.includes('cached plan must not change result type')) {
        unnamed.add(text);
        log.warn({ statement: text.slice(0, 200) }, 'a prepared statement no longer matches the schema (migrated meanwhile): it runs unnamed from now on');
        return true;
      }
      if (code === '26000' || code === '42P05') {
        if (naming) log.warn({ err }, 'prepared statements fail on this database connection (a pooler between us and PostgreSQL?): sending every statement unnamed from now on');
        naming = false;
        return true;
      }
      return false;
    }

    guarded<T>(call: (connection: PostgreSqlConnection) => Promise<T>, retryable: boolean): Promise<T> {
      if (this.replica) {
        const { primary } = this.replica;
        if (!retryable) return primary.guarded(call, retryable);
        return this.onReplica(() => call(this), () => primary.guarded(call, retryable));
      }
      // Not retryable means a write or a statement of a transaction: the request's later reads must see it.
      if (!retryable) router?.noteWrite();
      const once = () => guard.run(() => call(this));
      return once().catch(async (err: unknown) => {
        if (!retryable || !isConnectionError(err)) throw err;
        log.warn({ err }, 'read failed on a dead connection: retrying once on a fresh one');
        // The dead connection may be back in the pool for a moment before its close event marks it unusable;
        // a short pause lets the pool discard it, so the retry gets a fresh one.
        await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
        return once();
      });
    }

    /** Runs a read on this replica; if the replica fails it, marks it down and runs `fallback` on the primary. */
    private async onReplica<T>(read: () => Promise<T>, fallback: () => Promise<T>): Promise<T> {
      const index = this.replica?.index ?? -1;
      try {
        return await read();
      } catch (err) {
        const down = isReplicaDown(err);
        if (!down && !isRecoveryConflict(err)) throw err;
        if (down) router?.reportFailure(index, err);
        log.warn({ err, replica: index }, 'read failed on a replica: reading from the primary');
        return fallback();
      }
    }

  }

  // The router's own statements go to the pool directly (pg's `pool.query` checks a connection out and back in).
  const rows = (connection: PostgreSqlConnection): RunSql => async (text) =>
    (await (await connection.getNativeClient()).query<Record<string, unknown>>(text)).rows;

  return class ResilientPostgreSqlDriver extends AbstractSqlDriver<PostgreSqlConnection, PostgreSqlPlatform> {
    declare [EntityManagerType]: PostgreSqlEntityManager<this>;

    constructor(config: Configuration) {
      super(config, new PostgreSqlPlatform(), ResilientConnection, ['kysely', 'pg']);
      const primary = this.connection as ResilientConnection;
      const replicas = this.replicas as ResilientConnection[];
      replicas.forEach((replica, index) => (replica.replica = { index, primary }));
      // The router's own statements: on the primary through the breaker; on a replica directly (no fallback: a
      // probe is how the monitor learns that a replica is down).
      router?.bind((text) => primary.guarded((c) => rows(c)(text), true), replicas.map(rows));
    }

    /** The replicas' connections (DATABASE_REPLICA_URLS, in order): MikroORM keeps them protected. */
    replicaConnections(): readonly PostgreSqlConnection[] {
      return this.replicas;
    }

    /** `read` goes where the current request's routing says (a replica or the primary); `write` to the primary. */
    override getConnection(type: ConnectionType = 'write'): PostgreSqlConnection {
      if (type === 'write' || !router || this.replicas.length === 0) return this.connection;
      const target = router.readTarget();
      return (target === undefined ? undefined : this.replicas[target]) ?? this.connection;
    }

    // What PostgreSqlDriver adds to AbstractSqlDriver (its constructor fixes the connection class, so we cannot
    // extend it): PostgreSQL's EntityManager and MikroORM class.
    override createEntityManager(useContext?: boolean): this[typeof EntityManagerType] {
      const EntityManagerClass = this.config.get('entityManager', PostgreSqlEntityManager);
      return new EntityManagerClass(this.config, this, this.metadata, useContext);
    }

    override getORMClass(): Constructor<PostgreSqlMikroORM> {
      return PostgreSqlMikroORM;
    }
  };
}

