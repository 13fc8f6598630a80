/**
 * Listing resolvers: `tasks`, `taskStatistics`, `Task.subtasks`, `Task.subtaskSummary` and the task connection.
 * Typed with the resolver types `npm run codegen` generates from schema.graphql.
 */
import type { Resolvers } from '../generated/resolvers-types.js';
import { connectionResolvers } from './connection.resolvers.js';
import type { TaskView } from '../../tasks/task.entity.js';
import { TaskListing, type PageIncludes } from '../../tasks/task.listing.js';
import { taskStatistics } from '../../tasks/task.statistics.js';
import { connectionSelection, type ConnectionSelection } from '../lookahead.js';

/** What to fetch with a page, from the fields asked of the connection and of its rows. */
function pageIncludes({ fields, itemFields }: ConnectionSelection): PageIncludes {
  return {
    totalCount: fields.has('totalCount'),
    parent: itemFields.has('parent'),
    dependencies: itemFields.has('dependencies') || itemFields.has('isBlocked') || itemFields.has('availableTransitions'),
  };
}

export const listingResolvers = {
  Query: {
    tasks: (_, args, ctx, info) => new TaskListing(ctx).list(args, pageIncludes(connectionSelection(info))),
    taskStatistics: (_, { filter }, ctx) => taskStatistics(ctx.em, filter),
  },
  Task: {
    // Batched: every parent of the page asking with the same arguments shares one statement.
    subtasks: (task, { first, after, filter, orderBy }, ctx) => new TaskListing(ctx).subtasksOf(task.id, { first, after, filter, orderBy }),
    subtaskSummary: (task, _, ctx) => new TaskListing(ctx).summaryOf(task.id),
  },
  TaskConnection: connectionResolvers<TaskView>(),
} satisfies Resolvers;
