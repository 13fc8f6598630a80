/**
 * The edge where errors become GraphQL errors: the one `formatError` that lets deliberate errors (an AppError, or a
 * contract code raised by graphql-js or Apollo) through, maps known database failures to codes and masks everything
 * else; the HTTP status an AppError asks for; and `toGraphQLError` where a GraphQLError must be handed over.
 */
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import { AppError, ERROR_CODES } from '../errors.js';
import { isConnectionError, mapDatabaseError } from '../db/errors.js';

const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

/**
 * The AppError behind an error that reaches the edge: the error itself, what a resolver threw (graphql-js wraps it
 * with a path), or the `originalError` of a GraphQLError that Apollo or {@link toGraphQLError} built around it.
 */
export function appErrorOf(error: unknown): AppError | undefined {
  const original = unwrapResolverError(error);
  if (original instanceof AppError) return original;
  return original instanceof GraphQLError && original.originalError instanceof AppError ? original.originalError : undefined;
}

/** What clients are told: the deliberate error, or the one a known database failure maps to; undefined for anything unexpected. */
export function mapKnownError(err: unknown): AppError | undefined {
  return appErrorOf(err) ?? mapDatabaseError(err);
}

/**
 * The GraphQLError an AppError becomes where one must be handed over (Apollo's context creation, graphql-ws's
 * `onSubscribe`): code, extensions and HTTP status go in `extensions`, where Apollo and graphql-ws read them, and the
 * AppError stays its `originalError`, where `formatError` finds it.
 */
export function toGraphQLError(err: AppError): GraphQLError {
  const extensions = { ...err.extensions, code: err.code, ...(err.http ? { http: err.http } : {}) };
  return new GraphQLError(err.message, { originalError: err, extensions });
}

/**
 * Gives the HTTP response the status and headers (`Retry-After`) its AppErrors ask for. Apollo takes them from a
 * GraphQLError's `extensions.http` only, and an AppError reaches it wrapped in one without them. The hook runs before
 * Apollo settles the status (500 when nothing set one, for an operation that did not execute).
 */
export function appErrorStatusPlugin<TContext extends BaseContext>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async didEncounterErrors({ errors, response }) {
          for (const error of errors) {
            const http = appErrorOf(error)?.http;
            if (!http) continue;
            response.http.status = http.status;
            for (const [name, value] of http.headers ?? []) response.http.headers.set(name, value);
          }
        },
      };
    },
  };
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
 * Apollo's `formatError`: deliberate errors (an AppError, or a GraphQLError with a known code) pass through with
 * their code and extensions; known database failures get their code; everything else becomes a bare "Internal
 * server error" (the original is logged by the error-logging plugin with the request id). Stacks appear only when
 * `includeStack` is true (NODE_ENV=development).
 */
export function createFormatError(includeStack: boolean) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    const known = mapKnownError(original);
    if (known) {
      return { ...formatted, message: known.message, extensions: withStack({ ...known.extensions, code: known.code }, formatted, includeStack) };
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
