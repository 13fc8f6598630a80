/**
 * Domain errors: the closed set of codes of docs/API.md ("Errors") and `AppError` with named factories. Nothing here
 * knows GraphQL: src/graphql/errors.ts turns an AppError into what a client sees (`extensions.code`, the HTTP status).
 */

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

/** The HTTP status (and headers, such as `Retry-After`) an error asks for when it ends an HTTP request. */
export interface HttpStatus {
  status: number;
  headers?: Map<string, string>;
}

/**
 * A deliberate error: its message, code and extensions reach the client as they are. `extensions` stays mutable
 * (a batch marks the failing item's `index` on it).
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly extensions: Record<string, unknown>;
  /** The status an HTTP response takes from this error; without it, the transport's own applies. */
  readonly http: HttpStatus | undefined;

  constructor(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}, http?: HttpStatus) {
    super(message);
    this.name = 'AppError';
    this.code = code;
    this.extensions = { ...extensions };
    this.http = http;
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
