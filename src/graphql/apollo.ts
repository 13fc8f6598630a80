/**
 * The Apollo Server of an app: schema, error masking, and the plugins that name each operation (for logs, the
 * shutdown report and SQL counts) and log unexpected errors with the request id.
 */
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import type { Logger } from '../logger.js';
import type { Config } from '../config.js';
import type { GraphQLContext } from './context.js';
import { createFormatError, isUnexpected } from './errors.js';
import { createResolvers, loadTypeDefs } from './schema.js';

/** Names the operation as soon as it is parsed, and logs errors that will reach the client masked. */
const operationPlugin: ApolloServerPlugin<GraphQLContext> = {
  async requestDidStart() {
    return {
      async didResolveOperation({ contextValue, operation, operationName }) {
        contextValue.operation.name = operationName ?? operation?.name?.value ?? 'anonymous';
        contextValue.operation.type = operation?.operation ?? 'unknown';
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
          if (!isUnexpected(error)) continue;
          const original = unwrapResolverError(error);
          contextValue.log.error({ err: original, path: error.path?.join('.'), operation: contextValue.operation.name }, 'operation failed');
        }
      },
    };
  },
};

export interface ApolloOptions {
  nodeEnv: string | undefined;
  log: Logger;
  limits: Config['limits'];
}

/** Builds (does not start) the Apollo Server. */
export function createApollo({ nodeEnv, log, limits }: ApolloOptions): ApolloServer<GraphQLContext> {
  return new ApolloServer<GraphQLContext>({
    typeDefs: loadTypeDefs(),
    resolvers: createResolvers(),
    formatError: createFormatError(nodeEnv === 'development'),
    includeStacktraceInErrorResponses: nodeEnv === 'development',
    introspection: limits.introspection,
    allowBatchedHttpRequests: limits.allowBatchedRequests,
    // No "Did you mean ...?" hints about the schema in production error messages.
    hideSchemaDetailsFromClientErrors: nodeEnv === 'production',
    // The app owns signals and shutdown order (DESIGN.md): Apollo must not exit the process on its own.
    stopOnTerminationSignals: false,
    logger: log,
    plugins: [operationPlugin],
  });
}
