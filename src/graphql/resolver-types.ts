/**
 * Combining resolver maps: each file resolves some types (typed with the generated `Resolvers`), and the schema
 * takes their union.
 */

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
