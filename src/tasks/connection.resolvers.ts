/**
 * The fields every Relay connection type shares, resolved from a {@link Page}.
 */
import type { Page } from './pagination.js';

/** Resolvers for `edges`, `nodes`, `pageInfo` and `totalCount` (counted only when selected). */
export function connectionResolvers<T>() {
  return {
    edges: (page: Page<T>) => page.rows.map((node, i) => ({ cursor: page.cursors[i] ?? '', node })),
    nodes: (page: Page<T>) => page.rows,
    pageInfo: (page: Page<T>) => ({
      hasNextPage: page.hasNextPage,
      hasPreviousPage: page.hasPreviousPage,
      startCursor: page.cursors[0] ?? null,
      endCursor: page.cursors.at(-1) ?? null,
    }),
    totalCount: (page: Page<T>) => page.totalCount(),
  };
}
