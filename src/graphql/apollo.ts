/**
 * The Apollo Server of an app: schema, error masking, and the plugins that name each operation (for logs, the
 * shutdown report and SQL counts) and log unexpected errors with the request id.
 */
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { unwrapResolverError } from '@apollo/server/errors';
import type { Logger } from '../logger.js';
import type { Config } from '../config.js';
import type { GraphQLContext } from './context.js';
import { Kind, OperationTypeNode, type FragmentDefinitionNode, type GraphQLSchema } from 'graphql';
import { AppError } from '../errors.js';
import { appErrorOf, appErrorStatusPlugin, createFormatError, isUnexpected, mapKnownError } from './errors.js';
import { enforceLimits, measureOperation, type OperationLimits } from './limits.js';
import type { RateLimiter } from '../http/rate-limit.js';
import { WRITE_SCOPE } from '../auth/authenticator.js';
import { createResolvers, loadTypeDefs } from './schema.js';

/**
 * Names the operation as soon as it is parsed; then, before anything executes: refuses it if it is too complex,
 * refuses a subscription (it runs over WebSocket, src/subscriptions/), refuses a mutation from a caller without the
 * write scope, and takes its cost from the caller's rate budget.
 * Finally, logs errors that will reach the client masked.
 */
const operationPlugin = (limits: OperationLimits, limiter: RateLimiter): ApolloServerPlugin<GraphQLContext> => ({
  async requestDidStart() {
    return {
      async didResolveOperation({ contextValue, operation, operationName, document, request, schema }) {
        contextValue.operation.name = operationName ?? operation?.name?.value ?? 'anonymous';
        contextValue.operation.type = operation?.operation ?? 'unknown';
        if (!operation) return;
        contextValue.useDocument(schema, document);
        const fragments = Object.fromEntries(
          document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((f) => [f.name.value, f]),
        );
        const shape = measureOperation(schema, operation, fragments, request.variables ?? {});
        contextValue.operation.cost = shape.cost;
        enforceLimits(shape, limits);
        if (operation.operation === OperationTypeNode.SUBSCRIPTION) {
          throw new AppError('BAD_REQUEST', 'Subscriptions run over WebSocket (the graphql-ws protocol) at /graphql, not over HTTP', {}, { status: 400 });
        }
        if (operation.operation === OperationTypeNode.MUTATION && contextValue.principal && !contextValue.principal.canWrite) {
          throw new AppError('FORBIDDEN', `Changing tasks needs a token with the ${WRITE_SCOPE} scope`, { scope: WRITE_SCOPE }, { status: 403 });
        }
        limiter.take(contextValue.rateKey, shape.cost);
      },
      async willSendResponse({ contextValue, response }) {
        if (response.body.kind === 'single') {
          for (const e of response.body.singleResult.errors ?? []) {
            const code = e.extensions?.code;
            contextValue.operation.errorCodes.push(typeof code === 'string' ? code : 'INTERNAL_SERVER_ERROR');
          }
        }
      },
      async didEncounterErrors({ contextValue, errors }) {
        for (const error of errors) {
          const original = unwrapResolverError(error);
          if (!isUnexpected(error)) {
            // The database refused or timed out: not a bug, but operators want to see it (with the driver's words).
            const known = mapKnownError(original);
            if (known?.code === 'SERVICE_UNAVAILABLE' && !appErrorOf(original)) {
              contextValue.log.warn({ err: original, reason: known.extensions.reason, operation: contextValue.operation.name }, 'operation refused: database unavailable');
            }
            continue;
          }
          contextValue.log.error({ err: original, path: error.path?.join('.'), operation: contextValue.operation.name }, 'operation failed');
        }
      },
    };
  },
});

export interface ApolloOptions {
  nodeEnv: string | undefined;
  log: Logger;
  limits: Config['limits'];
  limiter: RateLimiter;
  /** Receives the executable schema when Apollo has built it (the WebSocket server runs subscriptions on it). */
  onSchema?: (schema: GraphQLSchema) => void;
}

/** Builds (does not start) the Apollo Server. */
export function createApollo({ nodeEnv, log, limits, limiter, onSchema }: ApolloOptions): ApolloServer<GraphQLContext> {
  return new ApolloServer<GraphQLContext>({
    typeDefs: loadTypeDefs(),
    resolvers: createResolvers(),
    formatError: createFormatError(nodeEnv === 'development'),
    includeStacktraceInErrorResponses: nodeEnv === 'development',
    introspection: limits.introspection,
    allowBatchedHttpRequests: limits.allowBatchedRequests,
    // No "Did you mean ...?" hints about the schema in production error messages.
    hideSchemaDetailsFromClientErrors: nodeEnv === 'production',
    // The app owns signals and shutdown order (docs/DESIGN.md, "Shutdown"): Apollo must not exit the process
    // on its own.
    stopOnTerminationSignals: false,
    logger: log,
    // The parser stops counting at MAX_TOKENS, so a huge document is refused before it is fully parsed.
    parseOptions: { maxTokens: limits.maxTokens },
    plugins: [
      // Apollo's landing pages load from a CDN; the self-hosted playground (src/http/playground.ts) replaces them.
      ApolloServerPluginLandingPageDisabled(),
      // Installed by default, the cache-control plugin hooks every field's resolution (Apollo then wraps every
      // resolver of the schema) to compute a Cache-Control header we never send: GraphQL responses are not cached.
      ApolloServerPluginCacheControlDisabled(),
      operationPlugin(
        { maxDepth: limits.maxQueryDepth, maxAliases: limits.maxAliases, maxDirectives: limits.maxDirectives, maxCost: limits.maxQueryCost },
        limiter,
      ),
      appErrorStatusPlugin<GraphQLContext>(),
      { serverWillStart: async ({ schema }) => void onSchema?.(schema) },
    ],
  });
}
