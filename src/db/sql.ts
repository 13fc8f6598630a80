/**
 * Hand-written SQL with real bind parameters, and the transactions it runs in.
 *
 * MikroORM's `em.execute` and QueryBuilder inline parameter values into the SQL text (escaped, client-side). For
 * statements that carry client-supplied values (filters, cursors, search strings) we send them as PostgreSQL bind
 * parameters instead, on a connection of the ORM's pool (pg's `Pool`, which MikroORM's `getNativeClient()` hands
 * out) or the one the operation's transaction holds, and count them against the operation like every ORM statement.
 */
import type { PoolClient } from 'pg';
import type { EntityManager, PostgreSqlConnection } from '@mikro-orm/postgresql';
import { isConnectionError } from './errors.js';
import { isGuarded, isReadOnlyStatement } from './driver.js';

/** A statement and its parameters: `?` placeholders; an array parameter is sent as one PostgreSQL array (`= any(?)`). */
export interface Sql {
  text: string;
  params: unknown[];
}

/** Builds an {@link Sql} from a template: every interpolated value becomes a bind parameter. */
export function sql(strings: TemplateStringsArray, ...values: unknown[]): Sql {
  let text = strings[0] ?? '';
  const params: unknown[] = [];
  values.forEach((value, i) => {
    if (isSql(value)) {
      text += value.text;
      params.push(...value.params);
    } else {
      text += '?';
      params.push(value);
    }
    text += strings[i + 1] ?? '';
  });
  return { text, params };
}

function isSql(value: unknown): value is Sql {
  return typeof value === 'object' && value !== null && 'text' in value && 'params' in value && Array.isArray((value as Sql).params);
}

/** Joins fragments with a separator (e.g. ' and '). */
export function join(parts: Sql[], separator: string): Sql {
  return { text: parts.map((p) => p.text).join(separator), params: parts.flatMap((p) => p.params) };
}

/** A fragment of trusted SQL text (identifiers, keywords) with no parameters. Never pass client input. */
export function raw(text: string): Sql {
  return { text, params: [] };
}

/**
 * What {@link query} needs of an EntityManager: its transaction (if any), its connections, the platform and the
 * logger context that names the operation. An operation's fork has all of it; so has an {@link OperationReader}.
 */
export type SqlContext = Pick<EntityManager, 'getTransactionContext' | 'getConnection' | 'getPlatform' | 'getLoggerContext'>;

/**
 * A transaction of {@link transaction}: the pg connection it holds from BEGIN to COMMIT. Hand-written statements
 * need the connection itself (MikroORM's transactions are Kysely's, which send no named statements).
 */
export interface PgTransaction {
  readonly client: PoolClient;
}

function isPgTransaction(value: unknown): value is PgTransaction {
  return typeof value === 'object' && value !== null && typeof (value as { client?: { query?: unknown } }).client?.query === 'function';
}

/**
 * One operation's access to the database without forking an EntityManager: hand-written statements need no
 * identity map, and a fork (a unit of work, an entity factory, two configuration writes that set an environment
 * variable) cost as much CPU as a one-row read itself. Outside a transaction, or inside one
 * ({@link OperationReader.withTransaction}); its statements are counted and logged with the operation's logger
 * context like the fork's.
 */
export class OperationReader implements SqlContext {
  constructor(
    private readonly root: EntityManager,
    private readonly loggerContext: Record<string, unknown>,
    private readonly transaction?: PgTransaction,
  ) {}

  /** The same operation inside `transaction`: every statement through it runs on the transaction's connection. */
  withTransaction(transaction: PgTransaction): OperationReader {
    return new OperationReader(this.root, this.loggerContext, transaction);
  }

  getTransactionContext<T>(): T | undefined {
    // Typed as the caller asks, like EntityManager's own (the driver's transaction object).
    return this.transaction as T | undefined;
  }

  getConnection(type?: 'read' | 'write'): ReturnType<EntityManager['getConnection']> {
    return this.root.getConnection(type);
  }

  getPlatform(): ReturnType<EntityManager['getPlatform']> {
    return this.root.getPlatform();
  }

  getLoggerContext<T extends Record<string, unknown> = Record<string, unknown>>(): T {
    // The operation's context object as is, typed as the caller asks, like EntityManager's own (a Dictionary).
    return this.loggerContext as T;
  }
}

interface Counted {
  logQuery(query: string, context?: Record<string, unknown>): void;
}

/** Logs `text` as a statement of `connection` (and so counts it): `logQuery` is protected in MikroORM's types. */
function logStatement(connection: PostgreSqlConnection, text: string, context: Record<string, unknown>): void {
  (connection as unknown as Counted).logQuery(text, context);
}

/** The error to release a pg connection with when `err` says it is broken: the pool then closes it. */
function brokenBy(err: unknown): Error | undefined {
  return isConnectionError(err) ? (err instanceof Error ? err : new Error(String(err))) : undefined;
}

/**
 * `?` placeholders to PostgreSQL's `$1, $2, ...`. Every `?` is a placeholder: our statements contain no other
 * question mark (no `?` operator of jsonb, no literal), and {@link sql} never produces one.
 */
export function positional(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}

/**
 * A LIMIT written into a statement's text rather than bound. With `limit $n`, PostgreSQL cannot cost a generic
 * plan (it assumes a tenth of the matching rows), so a prepared statement (they all are: see {@link query}) was
 * planned afresh on every run: 0.45 ms of planning on a 0.7 ms page. With the number in the text the cached
 * generic plan wins after five runs. Callers pass bounded sizes (a page is 0..100), so the texts stay few.
 *
 * @throws Error for anything but a non-negative safe integer (a bug: sizes are validated before this).
 */
export function limitClause(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`a LIMIT must be a non-negative integer, got ${n}`);
  return `limit ${n}`;
}

/**
 * Runs a statement on the operation's connection (its transaction, if any) with bind parameters; returns the
 * rows. It goes through the circuit breaker, and a read outside a transaction is retried once if its connection
 * died, like every ORM statement (src/db/driver.ts). A read outside a transaction is routed like the ORM's reads:
 * to the request's replica when there are replicas (src/db/replicas.ts), else to the primary.
 *
 * The statement goes straight to a pg connection of the pool (or the transaction's): MikroORM's own path (Kysely's
 * compiled query, its executor and plugins, result mapping) is not needed for a statement whose rows we map.
 */
export async function query<T = Record<string, unknown>>(em: SqlContext, statement: Sql): Promise<T[]> {
  const trx = em.getTransactionContext<unknown>();
  if (trx !== undefined && !isPgTransaction(trx)) {
    throw new Error('hand-written SQL runs in a transaction of src/db/sql.ts (TransactionRunner), not in em.transactional');
  }
  const readOnly = !trx && isReadOnlyStatement(statement.text);
  const connection = em.getConnection(readOnly ? 'read' : 'write');
  const values = statement.params;
  // Refuse undefined values (pg would silently send NULL), to catch a missing value early.
  for (let i = 0; i < values.length; i++) {
    if (values[i] === undefined) throw new Error(`Undefined binding at position ${i + 1} in: ${statement.text}`);
  }
  const text = positional(statement.text);
  // Named: prepared once per connection, then only bound and run (no parse and plan per run).
  const name = isGuarded(connection) ? connection.statementName(text) : undefined;
  const send = async (pg: PoolClient): Promise<T[]> => {
    try {
      return (await pg.query(name === undefined ? { text, values } : { name, text, values })).rows as T[];
    } catch (err) {
      // The preparation failed (the schema changed under the plan, or a pooler lost the statement): the statement
      // did not run. Outside a transaction it runs again at once, unnamed; inside one the transaction is aborted,
      // and the TransactionRunner runs it again whole (src/db/transaction.ts).
      if (name === undefined || !isGuarded(connection) || !connection.preparationFailed(err, text) || trx) throw err;
      return (await pg.query({ text, values })).rows as T[];
    }
  };
  const run = async (on: PostgreSqlConnection): Promise<T[]> => {
    const started = performance.now();
    try {
      if (trx) return await send(trx.client);
      const pg = await (await on.getNativeClient()).connect();
      let broken: Error | undefined;
      try {
        return await send(pg);
      } catch (err) {
        broken = brokenBy(err);
        throw err;
      } finally {
        // A connection that failed at the connection level is closed, not lent again.
        pg.release(broken);
      }
    } catch (err) {
      // The same exception classes as every ORM statement (UniqueConstraintViolationException, ...), so error
      // mapping does not depend on which path a statement took.
      throw em.getPlatform().getExceptionConverter().convertException(err as Error);
    } finally {
      logStatement(on, statement.text, { ...em.getLoggerContext(), took: performance.now() - started });
    }
  };
  return isGuarded(connection) ? connection.guarded((on) => run(on), readOnly) : run(connection);
}

/**
 * Runs `work` in a transaction on one pg connection of the write pool: BEGIN (through the breaker: see
 * {@link GuardedConnection.beginTransaction}), `work` with the operation inside the transaction, then COMMIT, or
 * ROLLBACK when `work` throws. The connection goes back to the pool after either, or is closed when it broke.
 */
export async function transaction<T>(db: OperationReader, work: (tx: OperationReader) => Promise<T>): Promise<T> {
  const connection = db.getConnection('write');
  if (!isGuarded(connection)) throw new Error('transactions need the resilient driver (src/db/driver.ts)');
  const client = await connection.beginTransaction();
  logStatement(connection, 'begin', {});
  try {
    const result = await work(db.withTransaction({ client }));
    // A COMMIT can fail too (a serialization failure, a lost connection): as the ORM's exception, like a statement.
    await client.query('commit').catch((err: unknown) => {
      throw db.getPlatform().getExceptionConverter().convertException(err as Error);
    });
    logStatement(connection, 'commit', {});
    client.release();
    return result;
  } catch (err) {
    try {
      await client.query('rollback');
      logStatement(connection, 'rollback', {});
      client.release(brokenBy(err));
    } catch (rollbackError) {
      // The rollback failing means the connection is gone (or in a state nobody should inherit): close it.
      client.release(rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError)));
    }
    throw err;
  }
}

/** An {@link Sql} from text with `?` placeholders and its parameters. */
export function toSql(text: string, params: unknown[] = []): Sql {
  return { text, params };
}
