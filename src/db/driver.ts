/**
 * The PostgreSQL driver with the app's resilience around it: every statement and transaction start goes through
 * the circuit breaker, and a read outside a transaction whose connection died (backend terminated, connection
 * reset) is retried once on a fresh connection. Writes and statements inside transactions are never retried
 * here: their outcome is unknown once the connection is gone, and a mutation must not be applied twice.
 *
 * Every statement, the ORM's and our hand-written ones (src/db/sql.ts), is sent with bind parameters: MikroORM
 * hands `execute` a text with `?` placeholders and the values it would inline (`platform.formatQuery`); we send
 * `$1..$n` and the values, converted as formatQuery means them ({@link bindStatement}), as a named prepared statement
 * (parsed and planned once per connection): outside a transaction on a connection of the pool, inside one on the
 * transaction's connection. A statement whose values cannot be bound that way runs
 * through MikroORM's own path, inlined, as before (so do `em.stream`'s, which do not come through `execute`).
 *
 * With read replicas (DATABASE_REPLICA_URLS, MikroORM's `replicas`), `getConnection('read')` asks the app's
 * {@link ReplicaRouter} where the current request reads (src/db/replicas.ts). Replica connections do not go through
 * the primary's breaker: a read that fails there at the connection level takes the replica out of rotation and runs
 * again on the primary.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { Pool, PoolClient, QueryResult as PgQueryResult } from 'pg';
import { CompiledQuery } from 'kysely';
import { PostgreSqlConnection, PostgreSqlDriver, type PostgreSqlPlatform } from '@mikro-orm/postgresql';
import {
  isRaw,
  JsonProperty,
  raw,
  Utils,
  type AnyEntity,
  type Configuration,
  type ConnectionOptions,
  type ConnectionType,
  type EntityData,
  type LoggingOptions,
  type QueryResult,
  type Transaction,
} from '@mikro-orm/core';
import type { Logger } from '../logger.js';
import { isConnectionError, isPoolExhausted, sqlStateOf } from './errors.js';
import type { DatabaseGuard } from './guard.js';
import type { ReplicaRouter, RunSql } from './replicas.js';

type ExecuteArgs = Parameters<PostgreSqlConnection['execute']>;
/** What MikroORM's `execute` may resolve to (its own constraint on the result type). */
type ExecuteResult = QueryResult | EntityData<AnyEntity> | Array<EntityData<AnyEntity>>;
type Method = 'all' | 'get' | 'run';

/** Pause before retrying on a fresh connection. */
const RETRY_PAUSE_MS = 50;

/** What src/db/sql.ts's transactions use to go through the same breaker, read retry and replica routing. */
export interface GuardedConnection {
  /**
   * Runs `call` through the breaker; when `retryable`, a connection-level failure is retried once. `call` is given
   * the connection to run on: this one, or the primary when a replica failed.
   */
  guarded<T>(call: (connection: PostgreSqlConnection) => Promise<T>, retryable: boolean): Promise<T>;
}

/**
 * SQLSTATEs of a statement that failed before it ran, for how it was sent rather than for what it says: a named
 * statement that failed as a prepared statement (`0A000` its plan's result changed, `26000` the server does not have
 * it, `42P05` it already has one of that name), or a bound one whose parameter type PostgreSQL could not settle
 * (`42P18`, `42P08`: the inlined literal would have had a type). Its text then runs unnamed, or inlined.
 */
export const PREPARATION_FAILURES: ReadonlySet<string> = new Set(['0A000', '26000', '42P05', '42P18', '42P08']);

/** The SQLSTATEs of {@link PREPARATION_FAILURES} that say a parameter's type was left open. */
const BINDING_FAILURES: ReadonlySet<string> = new Set(['42P18', '42P08']);

/**
 * The most distinct statement texts an app prepares. Every connection may end up holding each of them (pg keeps
 * them for the connection's life, PostgreSQL keeps their plans), so the number is bounded; texts past it run
 * unnamed. Texts depend on the shape of a request (which filters, how many values in a list), not on its values.
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

/** Whether `connection` is one of {@link resilientDriver}'s. */
export function isGuarded(connection: object): connection is GuardedConnection {
  return typeof (connection as Partial<GuardedConnection>).guarded === 'function';
}
type BeginArgs = Parameters<PostgreSqlConnection['begin']>;
type CommitArgs = Parameters<PostgreSqlConnection['commit']>;
type RollbackArgs = Parameters<PostgreSqlConnection['rollback']>;
type Begun = ReturnType<PostgreSqlConnection['begin']>;

/** `err` as an Error, to release a pg connection with (the pool then closes it). */
function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** A statement that only reads: safe to send again. */
export function isReadOnlyStatement(sqlText: string): boolean {
  // Only the first word is lower-cased: the ORM's texts run to kilobytes, and every statement asks.
  const first = sqlText.trimStart().slice(0, 6).toLowerCase();
  return (first === 'select' || first.startsWith('with')) && !/\b(insert|update|delete|for\s+(no\s+key\s+)?update|for\s+(key\s+)?share|nextval|setval|pg_advisory)\b/i.test(sqlText);
}

/** A statement as sent: `$n` placeholders and their values. */
export interface BoundStatement {
  text: string;
  values: unknown[];
  /** The values are in the text (formatQuery's): sent without parameters, and never prepared (one text per value). */
  inlined?: boolean;
}

/** A value formatQuery would inline as something a bind parameter cannot stand for (see {@link bindStatement}). */
class Unbindable extends Error {}

/**
 * The type PostgreSQL gives the literal formatQuery writes for `n` (`String(n)`: digits, or a decimal point or an
 * exponent): digits are `int4` or `int8` when they fit, anything else is `numeric`.
 */
function literalType(n: number): 'int4' | 'int8' | 'numeric' {
  if (!Number.isInteger(n)) return 'numeric';
  if (n >= -2_147_483_648 && n <= 2_147_483_647) return 'int4';
  // Past 2^53 String() gives the shortest digits that read back as `n`, not its exact value; past 1e21 an exponent.
  const digits = String(n);
  if (!/^-?\d+$/.test(digits)) return 'numeric';
  const big = BigInt(digits);
  return big >= -(2n ** 63n) && big < 2n ** 63n ? 'int8' : 'numeric';
}

/** Does `segment` (the text before a placeholder) end with the keyword LIMIT? */
function endsWithLimit(segment: string): boolean {
  let end = segment.length;
  while (end > 0 && segment.charCodeAt(end - 1) <= 32) end--;
  return end >= 6 && segment.slice(end - 5, end).toLowerCase() === 'limit' && segment.charCodeAt(end - 6) <= 32;
}

/**
 * Text with MikroORM's `?` placeholders and the parameters `platform.formatQuery` would inline, as a statement with
 * bind parameters that means the same:
 * - `??` is an identifier and `\?` a literal question mark, as in formatQuery (and a text without parameters is
 *   sent as it is); a `raw()` fragment among the parameters is written into the text, its own parameters bound;
 * - an array is a list (`in (?)`: one parameter per item, nested arrays flattened): PostgreSQL arrays reach us as
 *   array literals (MikroORM's ArrayType; `query()` in src/db/sql.ts), never as JavaScript arrays;
 * - a plain object, or a value MikroORM tagged as JSON, is its JSON text; a Date the text formatQuery writes (the
 *   platform's timezone); a bigint its digits; a Buffer its hex text (`\x0aff`), as bytea reads it;
 * - a number or boolean is cast to the type its literal would have had (`$1::int4`, `int8`, `numeric`, `bool`), so
 *   operators and functions resolve as they did with the literal; strings and nulls stay untyped, as a quoted
 *   literal is;
 * - the number after LIMIT stays in the text, as formatQuery writes it: with `limit $n` PostgreSQL's generic plan
 *   guesses a tenth of the rows, so a prepared page or `findOne` would be planned afresh on every run.
 *
 * @returns the bound statement, or why it cannot be (a value formatQuery writes as something other than a literal:
 * undefined, NaN, a class instance, a null or an object inside a list, a text of several statements...).
 */
export function bindStatement(platform: PostgreSqlPlatform, sql: string, params: readonly unknown[]): BoundStatement | { unbound: string } {
  const values: unknown[] = [];
  try {
    const text = bindInto(platform, sql, params, values);
    // The extended protocol takes one statement; formatQuery's text went by the simple protocol, which takes several.
    if (values.length > 0 && /;\s*\S/.test(text)) throw new Unbindable('several statements in one text');
    return { text, values };
  } catch (err) {
    // Whatever formatQuery would make of it (or fail with) is MikroORM's own path to find out.
    return { unbound: err instanceof Error ? err.message : String(err) };
  }
}

/** formatQuery's walk over `sql` (same rules, same order), binding where it inlines; appends to `values`. */
function bindInto(platform: PostgreSqlPlatform, sql: string, params: readonly unknown[], values: unknown[]): string {
  if (params.length === 0) return sql;
  let j = 0;
  let pos = 0;
  let ret = '';
  if (sql.startsWith('?')) {
    if (sql[1] === '?') {
      ret += platform.quoteIdentifier(params[j++] as string);
      pos = 2;
    } else {
      ret += bindValue(platform, params[j++], values, '');
      pos = 1;
    }
  }
  while (pos < sql.length) {
    const idx = sql.indexOf('?', pos + 1);
    if (idx === -1) {
      ret += sql.substring(pos, sql.length);
      break;
    }
    if (sql.substring(idx - 1, idx + 1) === '\\?') {
      ret += sql.substring(pos, idx - 1) + '?';
      pos = idx + 1;
    } else if (sql.substring(idx, idx + 2) === '??') {
      ret += sql.substring(pos, idx) + platform.quoteIdentifier(params[j++] as string);
      pos = idx + 2;
    } else {
      const before = sql.substring(pos, idx);
      ret += before + bindValue(platform, params[j++], values, before);
      pos = idx + 1;
    }
  }
  return ret;
}

/** What replaces one `?` with value `value` (formatQuery's `quoteValue`); `before` is the text since the last one. */
function bindValue(platform: PostgreSqlPlatform, value: unknown, values: unknown[], before: string): string {
  if (isRaw(value)) return bindInto(platform, value.sql, value.params, values);
  if (Utils.isPlainObject(value) || (value as { [JsonProperty]?: unknown } | null | undefined)?.[JsonProperty]) {
    return `$${values.push(JSON.stringify(value))}`;
  }
  if (Array.isArray(value)) {
    if (value.length === 0) throw new Unbindable('an empty list');
    return value.map((item) => bindListItem(platform, item, values)).join(', ');
  }
  if (typeof value === 'number' && endsWithLimit(before) && Number.isSafeInteger(value) && value >= 0) return String(value);
  if (value === null) return `$${values.push(null)}`;
  return bindScalar(platform, value, values);
}

/** An item of a list (formatQuery's `escape` of each, joined with commas). */
function bindListItem(platform: PostgreSqlPlatform, item: unknown, values: unknown[]): string {
  if (Array.isArray(item)) {
    if (item.length === 0) throw new Unbindable('an empty list');
    return item.map((i) => bindListItem(platform, i, values)).join(', ');
  }
  return bindScalar(platform, item, values);
}

function bindScalar(platform: PostgreSqlPlatform, value: unknown, values: unknown[]): string {
  switch (typeof value) {
    case 'string':
      return `$${values.push(value)}`;
    case 'bigint':
      return `$${values.push(value.toString())}`;
    case 'number': {
      if (!Number.isFinite(value)) throw new Unbindable(`the number ${value}`);
      return `$${values.push(value)}::${literalType(value)}`;
    }
    case 'boolean':
      return `$${values.push(value)}::bool`;
    default:
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) throw new Unbindable('an invalid Date');
        return `$${values.push(platform.formatDate(value))}`;
      }
      // formatQuery writes bytes as the literal E'\\x...': the same text, bound, reads the same (bytea's hex form).
      if (Buffer.isBuffer(value)) return `$${values.push(`\\x${value.toString('hex')}`)}`;
      throw new Unbindable(`a value of type ${value === null ? 'null' : typeof value}${value instanceof Object ? ` (${value.constructor.name})` : ''}`);
  }
}

/** A replica read failure that says the replica (not the statement) is the problem. */
function isReplicaDown(err: unknown): boolean {
  return isPoolExhausted(err) || isConnectionError(err);
}

/** A hot-standby conflict (`canceling statement due to conflict with recovery`): the primary has no such conflict. */
function isRecoveryConflict(err: unknown): boolean {
  return sqlStateOf(err) === '40001' && /conflict with recovery/.test(String((err as { message?: unknown } | null)?.message));
}

/** The error to release a pg connection with when `err` says it is broken: the pool then closes it. */
function brokenBy(err: unknown): Error | undefined {
  return isConnectionError(err) ? (err instanceof Error ? err : new Error(String(err))) : undefined;
}

/** What MikroORM's transaction object (Kysely's) is asked here. */
interface KyselyRunner {
  executeQuery(query: CompiledQuery, options?: unknown): Promise<{ rows: unknown[]; numAffectedRows?: bigint }>;
}

/** A pg result in the shape Kysely gives MikroORM (so `transformRawResult` reads it the same). */
function asKyselyResult(result: PgQueryResult): { rows: unknown[]; numAffectedRows?: bigint } {
  // Several statements in one text (the simple protocol) answer with a list of results: Kysely reads it as no rows.
  const { command, rowCount, rows } = result as Partial<PgQueryResult>;
  const counted = command === 'INSERT' || command === 'UPDATE' || command === 'DELETE' || command === 'MERGE';
  return { rows: rows ?? [], numAffectedRows: counted ? BigInt(rowCount ?? 0) : undefined };
}

/** MikroORM's cancellation options travel in the logger context (its `extractAbortOptions`); they are not logged. */
function splitAbort(loggerContext: LoggingOptions | undefined): { abort: unknown; context: Record<string, unknown> } {
  const { signal, inflightQueryAbortStrategy, ...context } = (loggerContext ?? {}) as Record<string, unknown>;
  return { abort: signal == null && inflightQueryAbortStrategy == null ? undefined : { signal, inflightQueryAbortStrategy }, context };
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
  /** Texts PostgreSQL could not type with their parameters bound (BINDING_FAILURES): they run inlined from then on. */
  const inlined = new Set<string>();
  let naming = preparedStatements;
  const statementName = (text: string): string | undefined => {
    if (!naming || unnamed.has(text)) return undefined;
    let name = names.get(text);
    // A text of several statements (sent without parameters) cannot be prepared.
    if (name === undefined && names.size < MAX_PREPARED_STATEMENTS && !/;\s*\S/.test(text)) {
      name = `tt_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
      names.set(text, name);
    }
    return name;
  };

  /**
   * Judges a failure of named statement `text`: true when it is the preparation that failed, not the statement, so
   * the statement can run again unnamed. A plan whose result changed (a migration added a column under a
   * `select *`) stops the naming of that text; a prepared statement the server does not have, or already has (a
   * pooler swapped the server connection) stops all naming.
   */
  const preparationFailed = (err: unknown, text: string): boolean => {
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
  };

  /** A statement PostgreSQL refused to type with bound parameters: `sql` runs inlined from now on. */
  const bindingFailed = (err: unknown, sql: string): boolean => {
    const state = sqlStateOf(err);
    if (state === undefined || !BINDING_FAILURES.has(state)) return false;
    if (inlined.size < MAX_PREPARED_STATEMENTS) inlined.add(sql);
    log.warn({ statement: sql.slice(0, 200), sqlState: state }, 'PostgreSQL cannot type a parameter of this statement when bound: it runs with its values inlined from now on');
    return true;
  };

  /** The pg connection a `begin` is checking out, set by the pool's wrapped `connect`. */
  const checkingOut = new AsyncLocalStorage<{ client?: PoolClient }>();
  /** The pg connection of each open transaction of MikroORM's (Kysely's transaction object). */
  const held = new WeakMap<object, PoolClient>();

  class ResilientConnection extends PostgreSqlConnection implements GuardedConnection {
    /** Set by the driver on replica connections: which replica, and the primary to fall back to. */
    replica: { index: number; primary: ResilientConnection } | undefined;
    /** The pg connections this pool opened that have not closed yet (see {@link close}). */
    private readonly open = new Set<EventEmitter>();
    private drained: (() => void) | undefined;
    /**
     * pg's pool, when statements may take its connections directly: not when the configuration asks Kysely to run
     * something on each connection it lends (session context, onCreate/onReserveConnection), which it alone does.
     */
    private pool: Pool | undefined;

    override async connect(...args: Parameters<PostgreSqlConnection['connect']>): Promise<void> {
      await super.connect(...args);
      const pool = await this.getNativeClient();
      // MikroORM makes the pool here, with no connection yet: each one it opens from now on is watched until closed.
      pool.on('connect', (client) => {
        this.open.add(client);
        client.once('end', () => {
          this.open.delete(client);
          if (this.open.size === 0) this.drained?.();
        });
      });
      // Which pg connection each of MikroORM's transactions takes (see `begin`): Kysely checks it out while `begin`
      // runs, inside `checkingOut`. The promise form only: ours and Kysely's; the callback form passes through.
      const checkOut = pool.connect.bind(pool) as () => Promise<PoolClient>;
      const connectTracked = async (): Promise<PoolClient> => {
        const client = await checkOut();
        const slot = checkingOut.getStore();
        if (slot) slot.client = client;
        return client;
      };
      pool.connect = ((...callback: unknown[]) =>
        callback.length > 0 ? (Reflect.apply(checkOut, pool, callback) as unknown) : connectTracked()) as Pool['connect'];
      const hooks =
        (this.options.onCreateConnection ?? this.config.get('onCreateConnection')) ??
        (this.options.onReserveConnection ?? this.config.get('onReserveConnection')) ??
        (this.config.get('sessionContext') === 'connection' ? 'session context' : undefined);
      this.pool = hooks === undefined ? pool : undefined;
    }

    /**
     * Closes the pool and resolves once every connection it opened has closed: pg's `pool.end()` resolves when it
     * has asked each one to close, before their sockets have, and a closed ORM must leave no session behind.
     */
    override async close(force?: boolean): Promise<void> {
      const pool = this.connected ? await this.getNativeClient() : undefined;
      this.pool = undefined;
      const closed = this.open.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.drained = resolve));
      await super.close(force);
      // MikroORM closes the pool through Kysely, which ends it only if Kysely ever ran a statement on it; a pool may
      // have served only statements sent on pg's connections directly (every one outside MikroORM's transactions).
      if (pool && !pool.ending) await pool.end();
      await closed;
      this.drained = undefined;
    }

    /**
     * MikroORM's `execute` (every ORM statement comes through here, and `query()` of src/db/sql.ts): through the
     * breaker, routed, reads outside a transaction retried once on a dead connection, and sent bound (see the
     * module comment). `ctx` is MikroORM's transaction, or a transaction of src/db/sql.ts.
     */
    override async execute<T extends ExecuteResult = Array<EntityData<AnyEntity>>>(
      query: ExecuteArgs[0],
      params: ExecuteArgs[1] = [],
      method: Method = 'all',
      ctx?: Transaction,
      loggerContext?: LoggingOptions,
    ): Promise<T> {
      // Like MikroORM's execute: an ORM made without `init` connects on its first statement.
      if (!this.connected) await this.ensureConnection();
      // What MikroORM's prepareQuery makes of its arguments: a text with `?` placeholders and positional values.
      let statement: { sql: string; params: readonly unknown[] };
      if (typeof query === 'string') statement = Array.isArray(params) ? { sql: query, params } : raw<{ sql: string; params: unknown[] }>(query, params);
      else statement = isRaw(query) ? query : query.toRaw();
      statement = { sql: this.config.get('onQuery')(statement.sql, statement.params), params: statement.params };
      const inTransaction = ctx !== undefined && ctx !== null;
      return this.guarded(
        (on) => (on as ResilientConnection).run<T>(statement, { query, params }, method, ctx, loggerContext),
        !inTransaction && isReadOnlyStatement(statement.sql),
      );
    }

    /**
     * Runs `statement` on this connection (no routing, no breaker: {@link execute} did that), bound; through
     * MikroORM's own execute (`original`, inlined) when it cannot be. Logged, and so counted, like MikroORM's.
     */
    private async run<T extends ExecuteResult>(
      statement: { sql: string; params: readonly unknown[] },
      original: { query: ExecuteArgs[0]; params: ExecuteArgs[1] },
      method: Method,
      ctx: unknown,
      loggerContext: LoggingOptions | undefined,
    ): Promise<T> {
      const { sql, params } = statement;
      const inline = () => super.execute<T>(original.query, original.params, method, ctx, loggerContext);
      const binding = inlined.has(sql) ? { unbound: 'PostgreSQL could not type its parameters' } : bindStatement(this.platform as PostgreSqlPlatform, sql, params);
      if ('unbound' in binding) {
        log.debug({ statement: sql.slice(0, 200), reason: binding.unbound }, 'statement sent with its values inlined');
        return inline();
      }
      const bound: BoundStatement = binding;
      const { abort, context } = splitAbort(loggerContext);
      const started = performance.now();
      try {
        const result = this.transformRawResult<T>(await this.send(bound, ctx, abort), method);
        const results = Array.isArray(result) ? result.length : undefined;
        const affected = Utils.isPlainObject<{ affectedRows?: number }>(result) ? result.affectedRows : undefined;
        this.logQuery(bound.text, { ...context, params: bound.values, took: performance.now() - started, results, affected });
        return result;
      } catch (err) {
        this.logQuery(bound.text, { ...context, params: bound.values, took: performance.now() - started, level: 'error' });
        // Nothing ran (PostgreSQL refused the statement before executing it): outside a transaction it runs again at
        // once, inlined; inside one the transaction is aborted, and runs again whole (PREPARATION_FAILURES).
        if (bindingFailed(err, sql) && !ctx) return inline();
        throw err;
      }
    }

    /** Sends `bound` on the transaction's connection, or on one of the pool's. */
    private async send(bound: BoundStatement, ctx: unknown, abort: unknown): Promise<{ rows: unknown[]; numAffectedRows?: bigint }> {
      if (ctx !== undefined && ctx !== null) {
        // On the transaction's own pg connection, named as outside one (its plan is reused by the next transaction
        // on that connection); a cancellable statement, or a savepoint's, goes through Kysely, which knows them.
        const client = abort === undefined ? held.get(ctx) : undefined;
        if (client) return this.onClient(client, bound, true);
        return (ctx as KyselyRunner).executeQuery(CompiledQuery.raw(bound.text, bound.values), abort);
      }
      // A cancellable statement goes through Kysely, which knows how to cancel it.
      if (!this.pool || abort !== undefined) return (this.getClient() as KyselyRunner).executeQuery(CompiledQuery.raw(bound.text, bound.values), abort);
      const client = await this.pool.connect();
      let broken: Error | undefined;
      try {
        return await this.onClient(client, bound, false);
      } catch (err) {
        broken = brokenBy(err);
        throw err;
      } finally {
        // A connection that failed at the connection level is closed, not lent again.
        client.release(broken);
      }
    }

    /** Runs `bound` on pg connection `client` as a named prepared statement when it may be one. */
    private async onClient(client: PoolClient, bound: BoundStatement, inTransaction: boolean): Promise<{ rows: unknown[]; numAffectedRows?: bigint }> {
      const { text, values } = bound;
      // A text with its values in it is not prepared: there would be one per value.
      const name = bound.inlined ? undefined : statementName(text);
      try {
        return asKyselyResult(await client.query(name === undefined ? { text, values } : { name, text, values }));
      } catch (err) {
        // The preparation failed (the schema changed under the plan, or a pooler lost the statement): the statement
        // did not run. Outside a transaction it runs again at once, unnamed; inside one the transaction is aborted,
        // and the TransactionRunner runs it again whole (src/db/transaction.ts).
        if (name === undefined || !preparationFailed(err, text) || inTransaction) throw err;
        return asKyselyResult(await client.query({ text, values }));
      }
    }

    /**
     * MikroORM's transactions (em.transactional, the migrations'): through the same breaker and routing as ours. The
     * pg connection each one takes is remembered: Kysely gives it back to the pool only after a BEGIN, COMMIT or
     * ROLLBACK that worked, so one whose connection died mid-transaction would stay checked out for good.
     */
    override async begin(...args: BeginArgs): Begun {
      const [options] = args;
      // A savepoint inside a transaction reuses its connection; only a new transaction needs the pool.
      if (options?.ctx) return super.begin(...args);
      // The request now writes: its later reads must see this transaction, so they go to the primary.
      router?.noteWrite();
      // A BEGIN that fails on a dead connection ran nothing of the transaction: safe to try once more.
      return this.guarded(async () => {
        const slot: { client?: PoolClient } = {};
        try {
          const trx = await checkingOut.run(slot, () => super.begin(...args));
          if (slot.client) held.set(trx, slot.client);
          return trx;
        } catch (err) {
          // Closed, not lent again: the pool forgets it.
          slot.client?.release(asError(err));
          throw err;
        }
      }, true);
    }

    override async commit(...args: CommitArgs): Promise<void> {
      await super.commit(...args);
      held.delete(args[0]);
    }

    /** Rolls back; when the ROLLBACK itself fails (the connection is gone), closes the transaction's connection. */
    override async rollback(...args: RollbackArgs): Promise<void> {
      const [ctx] = args;
      try {
        await super.rollback(...args);
      } catch (err) {
        held.get(ctx)?.release(asError(err));
        throw err;
      } finally {
        held.delete(ctx);
      }
    }

    guarded<T>(call: (connection: PostgreSqlConnection) => Promise<T>, retryable: boolean): Promise<T> {
      if (this.replica) {
        const { primary } = this.replica;
        // A transaction's statements carry the primary's transaction; a write never belongs on a replica.
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

  return class ResilientPostgreSqlDriver extends PostgreSqlDriver implements ReplicaAwareDriver {
    // PostgreSqlDriver's constructor makes a plain PostgreSqlConnection for the primary (an object holding options:
    // no pool until `connect`); this one replaces it before anything can use it.
    protected override readonly connection: ResilientConnection = new ResilientConnection(this.config);

    constructor(config: Configuration) {
      super(config);
      const primary = this.connection;
      const replicas = this.replicas as ResilientConnection[];
      replicas.forEach((replica, index) => (replica.replica = { index, primary }));
      // The router's own statements: on the primary through the breaker; on a replica directly (no fallback: a
      // probe is how the monitor learns that a replica is down).
      router?.bind((text) => primary.guarded((c) => rows(c)(text), true), replicas.map(rows));
    }

    /** MikroORM's replicas (its `replicas` option, each with the primary's options unless it sets its own), ours. */
    protected override createReplicas(): PostgreSqlConnection[] {
      return super.createReplicas((options: ConnectionOptions) => new ResilientConnection(this.config, options, 'read'));
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
  };
}
