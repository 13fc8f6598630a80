/**
 * Listing resolvers: `tasks`, `taskStatistics`, `Task.subtasks`, `Task.subtaskSummary` and the task connection.
 * Typed with the resolver types `npm run codegen` generates from schema.graphql.
 */
import type { Resolvers } from '../graphql/generated/resolvers-types.js';
import { connectionResolvers } from './connection.resolvers.js';
import type { TaskRecord } from './task.record.js';
import { TaskListing } from './task.listing.js';
import { taskStatistics } from './statistics.js';

export const listingResolvers = {
  Query: {
    tasks: (_, args, ctx) => new TaskListing(ctx).list(args),
    taskStatistics: (_, { filter }, ctx) => taskStatistics(ctx.em, filter),
  },
  Task: {
    // Batched: every parent of the page asking with the same arguments shares one statement.
    subtasks: (task, { first, after, filter, orderBy }, ctx) => new TaskListing(ctx).subtasksOf(task.id, { first, after, filter, orderBy }),
    subtaskSummary: (task, _, ctx) => new TaskListing(ctx).summaryOf(task.id),
  },
  TaskConnection: connectionResolvers<TaskRecord>(),
} satisfies Resolvers;
