/**
 * Resolver typing shared by the resolver maps (hand-written until the schema's types are generated).
 */
import type { GraphQLContext } from './context.js';

/** A field resolver: parent object, arguments, per-operation context. */
export type Resolver<Args, Result, Parent = unknown> = (parent: Parent, args: Args, ctx: GraphQLContext) => Result | Promise<Result>;

/** Arguments of a field that takes none. */
export type NoArgs = Record<string, never>;

/** A map of GraphQL type name to its field resolvers (or a scalar's behaviour). */
export type ResolverMap = Record<string, Record<string, unknown>>;

/** Merges resolver maps type by type, so several files may each resolve some fields of one type. */
export function mergeResolvers(...maps: ResolverMap[]): ResolverMap {
  const merged: ResolverMap = {};
  for (const map of maps) {
    for (const [type, fields] of Object.entries(map)) {
      for (const field of Object.keys(fields)) {
        if (merged[type] && field in merged[type]) throw new Error(`Resolver ${type}.${field} is defined twice`);
      }
      merged[type] = { ...merged[type], ...fields };
    }
  }
  return merged;
}
