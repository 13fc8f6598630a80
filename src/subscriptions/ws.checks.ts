/**
 * What an HTTP operation goes through before it runs, applied to an operation that arrives over WebSocket: the
 * parser's token limit, validation (with introspection switched by INTROSPECTION), subscriptions only (queries
 * and mutations go over HTTP, where the drain, the operation timeout and the in-flight registry apply), depth,
 * alias, directive and cost limits, and the caller's rate budget.
 */
import {
  GraphQLError,
  Kind,
  NoSchemaIntrospectionCustomRule,
  OperationTypeNode,
  getOperationAST,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { toGraphQLError } from '../graphql/errors.js';
import { enforceLimits, measureOperation } from '../graphql/limits.js';
import type { RateLimiter } from '../http/rate-limit.js';

/** A checked operation, ready to subscribe. */
export interface CheckedOperation {
  document: DocumentNode;
  operation: OperationDefinitionNode;
  name: string;
  cost: number;
}

export interface CheckInput {
  query: string;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
}

/**
 * Checks one operation; returns the errors to send instead of running it (GraphQLErrors: graphql-ws takes nothing
 * else from `onSubscribe`), or the checked operation.
 */
export function checkOperation(
  schema: GraphQLSchema,
  input: CheckInput,
  limits: Config['limits'],
  limiter: RateLimiter,
  rateKey: string,
): CheckedOperation | readonly GraphQLError[] {
  let document: DocumentNode;
  try {
    document = parse(input.query, { maxTokens: limits.maxTokens });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return [new GraphQLError(message, { extensions: { code: 'GRAPHQL_PARSE_FAILED' } })];
  }
  const rules = limits.introspection ? specifiedRules : [...specifiedRules, NoSchemaIntrospectionCustomRule];
  const invalid = validate(schema, document, rules);
  if (invalid.length > 0) {
    return invalid.map((e) => new GraphQLError(e.message, { nodes: e.nodes, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }));
  }
  const operation = getOperationAST(document, input.operationName ?? undefined);
  if (!operation) return [toGraphQLError(new AppError('BAD_REQUEST', 'Name the operation to run (operationName): the document holds several, or none'))];
  if (operation.operation !== OperationTypeNode.SUBSCRIPTION) {
    return [toGraphQLError(new AppError('BAD_REQUEST', `Only subscriptions run over WebSocket: send the ${operation.operation} over HTTP POST /graphql`))];
  }
  const fragments = Object.fromEntries(
    document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((f) => [f.name.value, f]),
  );
  try {
    const shape = measureOperation(schema, operation, fragments, input.variables ?? {});
    enforceLimits(shape, { maxDepth: limits.maxQueryDepth, maxAliases: limits.maxAliases, maxDirectives: limits.maxDirectives, maxCost: limits.maxQueryCost });
    limiter.take(rateKey, shape.cost);
    return { document, operation, name: operation.name?.value ?? 'anonymous', cost: shape.cost };
  } catch (err) {
    if (err instanceof AppError) return [toGraphQLError(err)];
    throw err;
  }
}
