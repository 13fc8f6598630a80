/**
 * Task resolvers: thin translations between GraphQL arguments and the task service.
 */
import type { NoArgs, Resolver } from '../graphql/resolver-types.js';
import type { Task } from './task.entity.js';
import type { CreateTaskInput, UpdateTaskInput } from './task.validation.js';

interface TaskResolvers {
  Query: {
    task: Resolver<{ id: string }, Task | null>;
  };
  Mutation: {
    createTask: Resolver<{ input: CreateTaskInput }, Task>;
    updateTask: Resolver<{ id: string; input: UpdateTaskInput; expectedVersion?: number | null }, Task>;
  };
  Task: {
    parent: Resolver<NoArgs, Task | null, Task>;
  };
}

export const taskResolvers: TaskResolvers = {
  Query: {
    task: (_, { id }, ctx) => ctx.tasks.get(id),
  },
  Mutation: {
    createTask: (_, { input }, ctx) => ctx.tasks.create(input),
    updateTask: (_, { id, input, expectedVersion }, ctx) => ctx.tasks.update(id, input, expectedVersion),
  },
  Task: {
    parent: (task, _, ctx) => ctx.tasks.parentOf(task),
  },
};
