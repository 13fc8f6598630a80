/**
 * Listing resolvers: `tasks`, `taskStatistics`, `Task.subtasks`, `Task.subtaskSummary` and the task connection.
 */
import type { NoArgs, Resolver } from '../graphql/resolver-types.js';
import type { Task } from './task.entity.js';
import type { TaskFilterInput } from './filters.js';
import type { Page } from './pagination.js';

interface ListingResolvers {
  Query: {
    tasks: Resolver<{ filter?: TaskFilterInput | null; first?: number | null; after?: string | null }, Page<Task>>;
  };
  TaskConnection: {
    edges: Resolver<NoArgs, Array<{ cursor: string; node: Task }>, Page<Task>>;
    nodes: Resolver<NoArgs, Task[], Page<Task>>;
    pageInfo: Resolver<NoArgs, { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null }, Page<Task>>;
    totalCount: Resolver<NoArgs, number, Page<Task>>;
  };
}

export const listingResolvers: ListingResolvers = {
  Query: {
    tasks: (_, { filter, first, after }, ctx) => ctx.tasks.list(filter, first, after),
  },
  TaskConnection: {
    edges: (page) => page.rows.map((node, i) => ({ cursor: page.cursors[i] ?? '', node })),
    nodes: (page) => page.rows,
    pageInfo: (page) => ({
      hasNextPage: page.hasNextPage,
      hasPreviousPage: page.hasPreviousPage,
      startCursor: page.cursors[0] ?? null,
      endCursor: page.cursors.at(-1) ?? null,
    }),
    // A field resolver, so the count runs only when a client selects it.
    totalCount: (page) => page.totalCount(),
  },
};
