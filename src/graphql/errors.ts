/**
 * Errors: the closed set of codes of docs/API.md ("Errors"), `AppError` with named factories, and the one
 * `formatError` that lets deliberate errors through, maps known database failures to codes and masks everything
 * else.
 */
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { unwrapResolverError } from '@apollo/server/errors';
import { isBrokenCircuitError } from 'cockatiel';
import {
  ConnectionException,
  DeadlockException,
  DriverException,
  LockWaitTimeoutException,
  OptimisticLockError,
  UniqueConstraintViolationException,
} from '@mikro-orm/core';

export const ERROR_CODES = [
  'BAD_REQUEST',
  'BAD_USER_INPUT',
  'NOT_FOUND',
  'VERSION_CONFLICT',
  'INVALID_TRANSITION',
  'BLOCKED_BY_DEPENDENCY',
  'CYCLE_DETECTED',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'QUERY_TOO_COMPLEX',
  'RATE_LIMITED',
  'SERVICE_UNAVAILABLE',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'INTERNAL_SERVER_ERROR',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];
const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

/** A deliberate error: its message and extensions reach the client as they are. */
export class AppError extends GraphQLError {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}, http?: { status: number; headers?: Map<string, string> }) {
    super(message, { extensions: { ...extensions, code, ...(http ? { http } : {}) } });
    this.code = code;
    this.name = 'AppError';
  }

  static badInput(message: string, field?: string): AppError {
    return new AppError('BAD_USER_INPUT', message, field ? { field } : {});
  }

  static notFound(entity: string, id: string): AppError {
    return new AppError('NOT_FOUND', `${entity} ${id} does not exist`, { id });
  }

  static versionConflict(id: string, expected: number, current: number): AppError {
    return new AppError(
      'VERSION_CONFLICT',
      `Task ${id} is at version ${current}, not ${expected}: re-read it and apply your change again`,
      { id, expectedVersion: expected, currentVersion: current },
    );
  }

  /**
   * The database cannot serve the request now; `reason` (in `extensions.reason`) tells clients and operators which
   * failure it was: DATABASE_UNREACHABLE, CIRCUIT_OPEN, POOL_EXHAUSTED, STATEMENT_TIMEOUT, QUERY_TIMEOUT,
   * TRANSACTION_CONFLICT, STARTING or SHUTTING_DOWN.
   */
  static unavailable(message: string, reason = 'DATABASE_UNREACHABLE'): AppError {
    return new AppError('SERVICE_UNAVAILABLE', `Service unavailable: ${message}. Try again shortly.`, { reason }, { status: 503 });
  }

  static internal(): AppError {
    return new AppError('INTERNAL_SERVER_ERROR', 'Internal server error');
  }
}

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

/** Maps a known database failure to a deliberate error; undefined for anything unexpected. */
export function mapKnownError(err: unknown): AppError | undefined {
  if (err instanceof AppError) return err;
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

/** What graphql-js says when it stops coercing variables after 50 errors. */
const TOO_MANY_VARIABLE_ERRORS = 'Too many errors processing variables, error limit reached. Execution aborted.';

/**
 * A GraphQLError raised on purpose (by us, graphql-js or Apollo) with one of the contract's codes. Apollo puts
 * the code of its own errors (parse, validation, variable coercion) on the formatted error only.
 */
function isDeliberate(original: unknown, code: unknown): boolean {
  return original instanceof GraphQLError && typeof code === 'string' && KNOWN_CODES.has(code) && code !== 'INTERNAL_SERVER_ERROR';
}

/**
 * Apollo's `formatError`: deliberate errors (with a known code) pass through; known database failures get their
 * code; everything else becomes a bare "Internal server error" (the original is logged by the error-logging
 * plugin with the request id). Stacks appear only when `includeStack` is true (NODE_ENV=development).
 */
export function createFormatError(includeStack: boolean) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    const known = mapKnownError(original);
    if (known) {
      const { http: _http, ...extensions } = known.extensions;
      return { ...formatted, message: known.message, extensions: withStack(extensions, formatted, includeStack) };
    }
    // graphql-js stops parsing at MAX_TOKENS with a syntax error; for clients it is a too-complex operation.
    if (formatted.extensions?.code === 'GRAPHQL_PARSE_FAILED' && /Document contains more th(?:an|at|en) \d+ tokens/.test(formatted.message)) {
      return { message: 'The document has more tokens than MAX_TOKENS allows; send a smaller operation', extensions: { code: 'QUERY_TOO_COMPLEX', setting: 'MAX_TOKENS' } };
    }
    // graphql-js gives up after 50 invalid variable values with a code-less error: still the client's input.
    if (formatted.message === TOO_MANY_VARIABLE_ERRORS) {
      return { message: 'Too many invalid variable values; fix the first ones and send the operation again', extensions: { code: 'BAD_USER_INPUT' } };
    }
    // Apollo's own code for an operationName the document does not contain: a malformed request in the contract.
    if (formatted.extensions?.code === 'OPERATION_RESOLUTION_FAILURE') {
      return { ...formatted, extensions: withStack({ code: 'BAD_REQUEST' }, formatted, includeStack) };
    }
    if (isDeliberate(original, formatted.extensions?.code ?? (original as GraphQLError).extensions?.code)) {
      return { ...formatted, extensions: withStack(formatted.extensions ?? {}, formatted, includeStack) };
    }
    return {
      message: 'Internal server error',
      ...(formatted.locations ? { locations: formatted.locations } : {}),
      ...(formatted.path ? { path: formatted.path } : {}),
      extensions: withStack({ code: 'INTERNAL_SERVER_ERROR' }, formatted, includeStack),
    };
  };
}

function withStack(extensions: Record<string, unknown>, formatted: GraphQLFormattedError, includeStack: boolean): Record<string, unknown> {
  const { stacktrace: _s, ...rest } = extensions;
  if (includeStack && formatted.extensions?.stacktrace) return { ...rest, stacktrace: formatted.extensions.stacktrace };
  return rest;
}

/** Should this error be logged at ERROR (masked, or the database unreachable)? */
export function isUnexpected(error: unknown): boolean {
  const original = unwrapResolverError(error);
  if (isConnectionError(original)) return true;
  const code = original instanceof GraphQLError ? original.extensions.code : undefined;
  if (code === 'OPERATION_RESOLUTION_FAILURE' || (original instanceof Error && original.message === TOO_MANY_VARIABLE_ERRORS)) return false;
  return !mapKnownError(original) && !isDeliberate(original, code) && !(error instanceof GraphQLError && isDeliberate(error, error.extensions.code));
}
