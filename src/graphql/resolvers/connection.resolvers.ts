/**
 * The fields every Relay connection type shares, resolved from a {@link Page}.
 */
import type { Page } from '../../pagination.js';

/** Resolvers for `edges`, `nodes`, `pageInfo` and `totalCount` (counted only when selected). */
export function connectionResolvers<T>() {
  return {
    // Cursors are getters: made only when the operation asks for them (JSON and base64 per row add up on a page).
    edges: (page: Page<T>) =>
      page.rows.map((node, i) => ({
        node,
        get cursor() {
          return page.cursor(i) ?? '';
        },
      })),
    nodes: (page: Page<T>) => page.rows,
    pageInfo: (page: Page<T>) => ({
      hasNextPage: page.hasNextPage,
      hasPreviousPage: page.hasPreviousPage,
      get startCursor() {
        return page.cursor(0);
      },
      get endCursor() {
        return page.cursor(page.rows.length - 1);
      },
    }),
    totalCount: (page: Page<T>) => page.totalCount(),
  };
}
