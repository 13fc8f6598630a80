/**
 * Listing resolvers: `tasks`, `taskStatistics`, `Task.subtasks`, `Task.subtaskSummary` and the task connection.
 * Typed with the resolver types `npm run codegen` generates from schema.graphql.
 */
import type { Resolvers } from '../graphql/generated/resolvers-types.js';
import { connectionResolvers } from './connection.resolvers.js';
import type { TaskRecord } from './task.record.js';
import { TaskListing, type PageIncludes } from './task.listing.js';
import { taskStatistics } from './statistics.js';
import { connectionItemFields } from '../graphql/lookahead.js';

/** Which related tasks to fetch with a page, from the fields its rows are asked for. */
function pageIncludes(fields: Set<string>): PageIncludes {
  return {
    parent: fields.has('parent'),
    dependencies: fields.has('dependencies') || fields.has('isBlocked') || fields.has('availableTransitions'),
  };
}

export const listingResolvers = {
  Query: {
    tasks: (_, args, ctx, info) => new TaskListing(ctx).list(args, pageIncludes(connectionItemFields(info))),
    taskStatistics: (_, { filter }, ctx) => taskStatistics(ctx.db, filter),
  },
  Task: {
    // Batched: every parent of the page asking with the same arguments shares one statement.
    subtasks: (task, { first, after, filter, orderBy }, ctx) => new TaskListing(ctx).subtasksOf(task.id, { first, after, filter, orderBy }),
    subtaskSummary: (task, _, ctx) => new TaskListing(ctx).summaryOf(task.id),
  },
  TaskConnection: connectionResolvers<TaskRecord>(),
} satisfies Resolvers;
