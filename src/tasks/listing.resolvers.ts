/**
 * Listing resolvers: `tasks`, `taskStatistics`, `Task.subtasks`, `Task.subtaskSummary` and the task connection.
 */
import type { NoArgs, Resolver } from '../graphql/resolver-types.js';
import type { Task } from './task.entity.js';
import type { TaskFilterInput } from './filters.js';
import type { Page } from './pagination.js';
import { TaskListing, type ListArgs } from './task.listing.js';
import type { TaskOrderInput } from './ordering.js';
import { taskStatistics, type TaskStatistics } from './statistics.js';

interface SubtaskArgs {
  first?: number | null;
  after?: string | null;
  filter?: TaskFilterInput | null;
  orderBy?: TaskOrderInput[] | null;
}

interface ListingResolvers {
  Query: {
    tasks: Resolver<ListArgs, Page<Task>>;
    taskStatistics: Resolver<{ filter?: TaskFilterInput | null }, TaskStatistics>;
  };
  Task: {
    subtasks: Resolver<SubtaskArgs, Page<Task>, Task>;
    subtaskSummary: Resolver<NoArgs, { total: number; completed: number; percentCompleted: number }, Task>;
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
    tasks: (_, args, ctx) => new TaskListing(ctx).list(args),
    taskStatistics: (_, { filter }, ctx) => taskStatistics(ctx.em, filter),
  },
  Task: {
    // Batched: every parent of the page asking with the same arguments shares one statement.
    subtasks: (task, { first, after, filter, orderBy }, ctx) => new TaskListing(ctx).subtasksOf(task.id, { first, after, filter, orderBy }),
    subtaskSummary: (task, _, ctx) => new TaskListing(ctx).summaryOf(task.id),
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
