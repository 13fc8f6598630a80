/**
 * The fields every Relay connection type shares, resolved from a {@link Page}.
 *
 * Cursors are resolvers, not getters on the edge objects: JSON and base64 per row add up on a page, so they are made
 * only when asked for, and a cursor that cannot be made (a row holding a value no cursor can carry) must fail as a
 * resolver does, as a field error. graphql-jit reads fields without resolvers as plain property reads, so a throwing
 * getter would escape the operation.
 */
import type { Edge, Page } from './pagination.js';

/** Resolvers for `edges`, `nodes`, `pageInfo` and `totalCount` (counted only when selected). */
export function connectionResolvers<T>() {
  return {
    edges: (page: Page<T>): Edge<T>[] => page.rows.map((node, index) => ({ node, page, index })),
    nodes: (page: Page<T>) => page.rows,
    pageInfo: (page: Page<T>) => page,
    totalCount: (page: Page<T>) => page.totalCount(),
  };
}

/** Resolvers for an edge type's `cursor`. */
export function edgeResolvers<T>() {
  return { cursor: (edge: Edge<T>) => edge.page.cursor(edge.index) ?? '' };
}

/** Resolvers for `PageInfo` (a page stands for its own page info). */
export const pageInfoResolvers = {
  startCursor: (page: Page<unknown>) => page.cursor(0),
  endCursor: (page: Page<unknown>) => page.cursor(page.rows.length - 1),
};
