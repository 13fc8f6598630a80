/**
 * The executable schema: `schema.graphql` (the source of truth at the repo root) plus resolvers and scalars.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { GraphQLScalarType } from 'graphql';
import { GraphQLDateTimeISO, GraphQLJSONObject } from 'graphql-scalars';
import { PROJECT_ROOT } from '../db/orm.js';
import { taskResolvers } from './resolvers/task.resolvers.js';
import { listingResolvers } from './resolvers/listing.resolvers.js';
import { webhookResolvers } from './resolvers/webhook.resolvers.js';
import { subscriptionResolvers } from '../subscriptions/subscription.resolvers.js';
import type { Resolvers } from './generated/resolvers-types.js';
import { mergeResolvers, type ResolverMap } from './resolver-types.js';

/** Reads `schema.graphql`. */
export function loadTypeDefs(): string {
  return readFileSync(path.join(PROJECT_ROOT, 'schema.graphql'), 'utf8');
}

/**
 * A scalar's behaviour without its name or description, so `schema.graphql` keeps both.
 * `DateTime` serializes as an ISO-8601 UTC string with milliseconds.
 */
function behaviourOf(scalar: GraphQLScalarType) {
  const { serialize, parseValue, parseLiteral } = scalar.toConfig();
  return { __serialize: serialize, __parseValue: parseValue, __parseLiteral: parseLiteral };
}
const DateTime = behaviourOf(GraphQLDateTimeISO);
const JSONObject = behaviourOf(GraphQLJSONObject);

/** All resolvers of the schema. */
export function createResolvers(): ResolverMap {
  return mergeResolvers(
    { DateTime, JSONObject },
    { Query: { health: (_, __, ctx) => ctx.health.check() } } satisfies Resolvers,
    taskResolvers,
    listingResolvers,
    webhookResolvers,
    subscriptionResolvers,
  );
}
