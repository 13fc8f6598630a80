/**
 * Hand-written SQL: what the repositories say where the ORM cannot.
 *
 * `sql` builds a statement from a template, every interpolated value a parameter; `query` runs it through the same
 * path as every ORM statement (the resilient driver's `execute`, src/db/driver.ts), which sends its values as
 * PostgreSQL bind parameters, on a connection of the ORM's pool or the one the operation's transaction holds, and
 * counts it against the operation.
 */
import { isBrokenCircuitError } from 'cockatiel';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { AnyEntity, EntityData } from '@mikro-orm/core';
import { isReadOnlyStatement } from './driver.js';

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
 * logger context that names the operation: an operation's fork, or a transaction's.
 */
export type SqlContext = Pick<EntityManager, 'getTransactionContext' | 'getConnection' | 'getPlatform' | 'getLoggerContext'>;

/**
 * A LIMIT written into a statement's text rather than bound. With `limit $n`, PostgreSQL cannot cost a generic
 * plan (it assumes a tenth of the matching rows), so a prepared statement (they all are: see {@link query}) was
 * planned afresh on every run: a page's planning cost more than its execution. With the number in the text the
 * cached generic plan wins after five runs. Callers pass bounded sizes (a page is 0..100), so the texts stay few.
 *
 * @throws Error for anything but a non-negative safe integer (a bug: sizes are validated before this).
 */
export function limitClause(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`a LIMIT must be a non-negative integer, got ${n}`);
  return `limit ${n}`;
}

/**
 * A JavaScript array as PostgreSQL's array literal (`{"a","b"}`), as pg writes one: a list of values is one
 * parameter (`= any(?)`, `?::text[]`), so the text does not depend on how many values a request sends.
 */
function arrayLiteral(items: readonly unknown[]): string {
  const element = (item: unknown): string => {
    if (item === null || item === undefined) return 'NULL';
    if (Array.isArray(item)) return arrayLiteral(item);
    if (Buffer.isBuffer(item)) return `\\\\x${item.toString('hex')}`;
    let text: string;
    if (typeof item === 'string') text = item;
    else if (typeof item === 'number' || typeof item === 'boolean' || typeof item === 'bigint') text = String(item);
    else text = item instanceof Date ? item.toISOString() : JSON.stringify(item);
    return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  };
  return `{${items.map(element).join(',')}}`;
}

/**
 * Runs a statement on the operation's connection (its transaction's, when `em` is a fork inside `em.transactional`)
 * with bind parameters; returns the rows. It takes the ORM's own path (src/db/driver.ts, `execute`): the circuit
 * breaker, a read outside a transaction retried once if its connection died, a read outside a transaction routed to
 * the request's replica when there are replicas (src/db/replicas.ts), a named prepared statement outside
 * transactions, and the statement counted against the operation. Its `?` placeholders mean what they mean to
 * MikroORM (`??` an identifier, `\?` a question mark); an array parameter is one PostgreSQL array.
 */
export async function query<T = Record<string, unknown>>(em: SqlContext, statement: Sql): Promise<T[]> {
  const trx = em.getTransactionContext<unknown>();
  const readOnly = !trx && isReadOnlyStatement(statement.text);
  const connection = em.getConnection(readOnly ? 'read' : 'write');
  const params = statement.params.map((value, i) => {
    // pg would silently send NULL for undefined (and MikroORM write "undefined"): a missing value is a bug.
    if (value === undefined) throw new Error(`Undefined binding at position ${i + 1} in: ${statement.text}`);
    return Array.isArray(value) ? arrayLiteral(value) : value;
  });
  try {
    // The operation's logger context names it (opKey, requestId): the statement is counted against it.
    return await connection.execute<Array<EntityData<AnyEntity>>>(statement.text, params, 'all', trx, em.getLoggerContext()) as T[];
  } catch (err) {
    // The same exception classes as every ORM statement (UniqueConstraintViolationException, ...), so error
    // mapping does not depend on which path a statement took; an open breaker's refusal stays what it is.
    throw isBrokenCircuitError(err) ? err : em.getPlatform().getExceptionConverter().convertException(err as Error);
  }
}

/** An {@link Sql} from text with `?` placeholders and its parameters. */
export function toSql(text: string, params: unknown[] = []): Sql {
  return { text, params };
}
