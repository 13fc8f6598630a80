/**
 * Hand-written SQL with real bind parameters.
 *
 * MikroORM's `em.execute` and QueryBuilder inline parameter values into the SQL text (escaped, client-side). For
 * statements that carry client-supplied values (filters, cursors, search strings) we send them as PostgreSQL bind
 * parameters instead, on the pg connection knex's pool lends (or the operation's transaction holds), and count them
 * against the operation like every ORM statement.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Knex } from '@mikro-orm/postgresql';
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
    private readonly transaction?: Knex.Transaction,
  ) {}

  /** The same operation inside `transaction`: every statement through it runs on the transaction's connection. */
  withTransaction(transaction: Knex.Transaction): OperationReader {
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

/** knex's client as far as we use it: its pool (or, for a transaction's client, the transaction's connection). */
interface PoolClient {
  acquireConnection(): Promise<PgConnection>;
  releaseConnection(connection: PgConnection): Promise<unknown>;
}

/** A pg client (node-postgres), the connection knex's pool holds. */
interface PgConnection {
  query(config: { name?: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}

/**
 * `?` placeholders to PostgreSQL's `$1, $2, ...`, as knex does for raw statements (knex also reads `??` as an
 * identifier and `\?` as a literal `?`: our statements use neither, and {@link sql} never produces them).
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
 * The statement goes straight to the pg client knex's pool (or the transaction) lends: knex's query pipeline (a
 * Raw builder, its binding walk, a runner, events and error decoration per statement) cost more CPU than the rest
 * of a one-row read. The pool, its acquire timeout and the transaction's connection are knex's as before.
 */
export async function query<T = Record<string, unknown>>(em: SqlContext, statement: Sql): Promise<T[]> {
  const trx = em.getTransactionContext<Knex.Transaction>();
  const readOnly = !trx && isReadOnlyStatement(statement.text);
  const connection = em.getConnection(readOnly ? 'read' : 'write');
  const values = statement.params;
  // knex refused undefined bindings; so do we (pg would silently send NULL), to catch a missing value early.
  for (let i = 0; i < values.length; i++) {
    if (values[i] === undefined) throw new Error(`Undefined binding at position ${i + 1} in: ${statement.text}`);
  }
  const text = positional(statement.text);
  // Named: prepared once per connection, then only bound and run (no parse and plan per run).
  const name = isGuarded(connection) ? connection.statementName(text) : undefined;
  const run = async (on: typeof connection): Promise<T[]> => {
    const client = (trx ?? on.getKnex()).client as unknown as PoolClient;
    const started = performance.now();
    try {
      const pg = await client.acquireConnection();
      try {
        try {
          return (await pg.query(name === undefined ? { text, values } : { name, text, values })).rows as T[];
        } catch (err) {
          // The preparation failed (the schema changed under the plan, or a pooler lost the statement): the statement
          // did not run. Outside a transaction it runs again at once, unnamed; inside one the transaction is aborted,
          // and the TransactionRunner runs it again whole (src/db/transaction.ts).
          if (name === undefined || !isGuarded(connection) || !connection.preparationFailed(err, text) || trx) throw err;
          return (await pg.query({ text, values })).rows as T[];
        }
      } finally {
        await client.releaseConnection(pg);
      }
    } catch (err) {
      // The same exception classes as every ORM statement (UniqueConstraintViolationException, ...), so error
      // mapping does not depend on which path a statement took.
      throw em.getPlatform().getExceptionConverter().convertException(err as Error);
    } finally {
      // `logQuery` is protected in MikroORM's types; calling it keeps logging, SQL counts and timings uniform.
      (on as unknown as Counted).logQuery(statement.text, { ...em.getLoggerContext(), took: performance.now() - started });
    }
  };
  return isGuarded(connection) ? connection.guarded((on) => run(on), readOnly) : run(connection);
}

/** An {@link Sql} from text with `?` placeholders and its parameters. */
export function toSql(text: string, params: unknown[] = []): Sql {
  return { text, params };
}
