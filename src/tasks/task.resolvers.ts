/**
 * Task resolvers: thin translations between GraphQL arguments and the task service.
 */
import type { GraphQLContext } from '../graphql/context.js';
import type { Task } from './task.entity.js';
import type { TaskFilterInput } from './filters.js';
import type { Page } from './pagination.js';
import type { CreateTaskInput, UpdateTaskInput } from './task.validation.js';

type Resolver<Args, Result, Parent = unknown> = (parent: Parent, args: Args, ctx: GraphQLContext) => Result | Promise<Result>;

interface TaskResolvers {
  Query: {
    task: Resolver<{ id: string }, Task | null>;
    tasks: Resolver<{ filter?: TaskFilterInput | null; first?: number | null; after?: string | null }, Page<Task>>;
  };
  Mutation: {
    createTask: Resolver<{ input: CreateTaskInput }, Task>;
    updateTask: Resolver<{ id: string; input: UpdateTaskInput; expectedVersion?: number | null }, Task>;
  };
  Task: {
    parent: Resolver<Record<string, never>, Task | null, Task>;
  };
  TaskConnection: {
    edges: Resolver<Record<string, never>, Array<{ cursor: string; node: Task }>, Page<Task>>;
    nodes: Resolver<Record<string, never>, Task[], Page<Task>>;
    pageInfo: Resolver<Record<string, never>, { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null }, Page<Task>>;
    totalCount: Resolver<Record<string, never>, number, Page<Task>>;
  };
}

export const taskResolvers: TaskResolvers = {
  Query: {
    task: (_, { id }, ctx) => ctx.tasks.get(id),
    tasks: (_, { filter, first, after }, ctx) => ctx.tasks.list(filter, first, after),
  },
  Mutation: {
    createTask: (_, { input }, ctx) => ctx.tasks.create(input),
    updateTask: (_, { id, input, expectedVersion }, ctx) => ctx.tasks.update(id, input, expectedVersion),
  },
  Task: {
    parent: (task, _, ctx) => ctx.tasks.parentOf(task),
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
