/**
 * Database failures: the PostgreSQL SQLSTATE of a driver error, whether a failure is the connection's (not the
 * statement's) or our pool's, and which domain error a known failure is for clients.
 */
import { isBrokenCircuitError } from 'cockatiel';
import {
  ConnectionException,
  DeadlockException,
  DriverException,
  LockWaitTimeoutException,
  OptimisticLockError,
  UniqueConstraintViolationException,
} from '@mikro-orm/core';
import { AppError } from '../errors.js';

/** The PostgreSQL SQLSTATE of a driver error, when there is one. */
export function sqlStateOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * pg's pool (pg-pool) when every connection stayed in use for DB_ACQUIRE_TIMEOUT_MS (its `connectionTimeoutMillis`)
 * while the request waited in its queue. A connection that cannot be opened in that time fails differently
 * (`Connection terminated due to connection timeout`): that one is the database's failure, this one our own queue's.
 */
const POOL_EXHAUSTED_MESSAGE = 'timeout exceeded when trying to connect';

/** Did the request wait for a pool connection longer than DB_ACQUIRE_TIMEOUT_MS while all were in use? */
export function isPoolExhausted(err: unknown): boolean {
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' && message.includes(POOL_EXHAUSTED_MESSAGE);
}

/**
 * What pg and its pool say when a connection is lost or cannot be had; none of these says anything about the
 * statement itself.
 */
const CONNECTION_FAILURE_MESSAGES = [
  /timeout exceeded when trying to connect/i, // pg-pool: no connection came free (see isPoolExhausted)
  /Connection terminated/i,
  /Connection ended unexpectedly/i,
  /connection is closed/i,
  /not queryable/i, // pg: "Client has encountered a connection error and is not queryable"
  /Query read timeout/i,
  /the database system is (shutting down|starting up)/i,
];

/** Is this a failure to reach the database (refused, reset, pool timeout), rather than a bad statement? */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof ConnectionException) return true;
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH'].includes(code)) return true;
  if (/^(08|57P0)/.test(code)) return true; // connection exceptions, admin/crash shutdown
  const message = typeof e?.message === 'string' ? e.message : '';
  return CONNECTION_FAILURE_MESSAGES.some((pattern) => pattern.test(message));
}

/** The domain error a known database failure is for clients; undefined for anything unexpected. */
export function mapDatabaseError(err: unknown): AppError | undefined {
  const message = (err as { message?: unknown } | null)?.message;
  const text = typeof message === 'string' ? message : '';
  if (isBrokenCircuitError(err)) return AppError.unavailable('the database is failing, requests are refused for a moment', 'CIRCUIT_OPEN');
  if (isPoolExhausted(err)) {
    return AppError.unavailable('every database connection is busy (DB_ACQUIRE_TIMEOUT_MS passed)', 'POOL_EXHAUSTED');
  }
  if (text.includes('Query read timeout')) return AppError.unavailable('the database did not answer in time', 'QUERY_TIMEOUT');
  if (isConnectionError(err)) return AppError.unavailable('the database is not reachable');
  const state = sqlStateOf(err);
  if (err instanceof OptimisticLockError) {
    return new AppError('VERSION_CONFLICT', 'The task was changed by another request: re-read it and try again');
  }
  if (state === '57014') {
    return AppError.unavailable('the statement took longer than DB_STATEMENT_TIMEOUT_MS and was cancelled', 'STATEMENT_TIMEOUT');
  }
  if (err instanceof DeadlockException || err instanceof LockWaitTimeoutException || state === '40001' || state === '40P01') {
    return AppError.unavailable('the database could not serialize concurrent changes', 'TRANSACTION_CONFLICT');
  }
  if (err instanceof UniqueConstraintViolationException) {
    return new AppError('BAD_USER_INPUT', 'A record with this identity already exists');
  }
  if (err instanceof DriverException && state?.startsWith('22')) {
    return new AppError('BAD_USER_INPUT', 'A value is out of range or malformed');
  }
  return undefined;
}
