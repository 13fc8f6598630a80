/**
 * Task resolvers: thin translations between GraphQL arguments and the services. Everything a page of tasks asks
 * for per task goes through the operation's DataLoaders.
 */
import type { NoArgs, Resolver } from '../graphql/resolver-types.js';
import type { GraphQLContext } from '../graphql/context.js';
import { connectionResolvers } from './connection.resolvers.js';
import { TaskEvent } from './event.entity.js';
import { TaskExecution, type LogLevel } from './execution.entity.js';
import { feedCursor, readFeed, taskEventsLoader, taskExecutionsLoader, type FeedArgs, type TaskPageArgs } from './feed.service.js';
import type { Page } from './pagination.js';
import { Task, type TaskStatus } from './task.entity.js';
import { availableTransitions } from './transitions.js';
import { parseId, type CreateTaskInput, type UpdateTaskInput } from './task.validation.js';

type TaskMutation<Args> = Resolver<Args, Task>;

/** `node(id)`: event ids are numbers, task and execution ids UUIDs. */
async function findNode(id: string, ctx: GraphQLContext): Promise<Task | TaskExecution | TaskEvent | null> {
  if (/^\d{1,19}$/.test(id)) return ctx.loaders.eventById.load(id);
  const uuid = parseId(id);
  return (await ctx.loaders.taskById.load(uuid)) ?? (await ctx.loaders.executionById.load(uuid));
}

const pageKey = (kind: string, args: TaskPageArgs) => `${kind}:${JSON.stringify([args.first ?? null, args.after ?? null])}`;

export const taskResolvers = {
  Query: {
    task: ((_, { id }, ctx) => ctx.tasks.get(id)) as Resolver<{ id: string }, Task | null>,
    node: ((_, { id }, ctx) => findNode(id, ctx)) as Resolver<{ id: string }, Task | TaskExecution | TaskEvent | null>,
    taskEvents: ((_, args, ctx) => readFeed(ctx.em, args)) as Resolver<FeedArgs, Page<TaskEvent>>,
  },
  Mutation: {
    createTask: ((_, { input }, ctx) => ctx.tasks.create(input)) as TaskMutation<{ input: CreateTaskInput }>,
    createTasks: ((_, { inputs }, ctx) => ctx.tasks.createMany(inputs)) as Resolver<{ inputs: CreateTaskInput[] }, Task[]>,
    updateTask: ((_, { id, input, expectedVersion }, ctx) => ctx.tasks.update(id, input, expectedVersion)) as TaskMutation<{
      id: string;
      input: UpdateTaskInput;
      expectedVersion?: number | null;
    }>,
    updateTasks: ((_, { ids, input }, ctx) => ctx.tasks.updateMany(ids, input)) as Resolver<{ ids: string[]; input: UpdateTaskInput }, Task[]>,
    transitionTask: ((_, { id, to, expectedVersion, result, errorMessage }, ctx) =>
      ctx.status.transition(id, to, expectedVersion, { result, errorMessage })) as TaskMutation<{
      id: string;
      to: TaskStatus;
      expectedVersion?: number | null;
      result?: string | null;
      errorMessage?: string | null;
    }>,
    startTask: ((_, { id }, ctx) => ctx.status.transition(id, 'IN_PROGRESS')) as TaskMutation<{ id: string }>,
    completeTask: ((_, { id, result }, ctx) => ctx.status.transition(id, 'COMPLETED', null, { result })) as TaskMutation<{
      id: string;
      result?: string | null;
    }>,
    failTask: ((_, { id, errorMessage }, ctx) => ctx.status.transition(id, 'FAILED', null, { errorMessage })) as TaskMutation<{
      id: string;
      errorMessage?: string | null;
    }>,
    retryTask: ((_, { id }, ctx) => ctx.status.transition(id, 'PENDING')) as TaskMutation<{ id: string }>,
    reportProgress: ((_, { id, progress, message, level }, ctx) => ctx.status.reportProgress(id, progress, message, level)) as TaskMutation<{
      id: string;
      progress: number;
      message?: string | null;
      level: LogLevel;
    }>,
    addTaskDependency: ((_, { taskId, dependsOnId }, ctx) => ctx.dependencies.add(taskId, dependsOnId)) as TaskMutation<{
      taskId: string;
      dependsOnId: string;
    }>,
    removeTaskDependency: ((_, { taskId, dependsOnId }, ctx) => ctx.dependencies.remove(taskId, dependsOnId)) as TaskMutation<{
      taskId: string;
      dependsOnId: string;
    }>,
    archiveTask: ((_, { id }, ctx) => ctx.removal.archive(id)) as TaskMutation<{ id: string }>,
    unarchiveTask: ((_, { id }, ctx) => ctx.removal.unarchive(id)) as TaskMutation<{ id: string }>,
    deleteTask: ((_, { id }, ctx) => ctx.removal.delete(id)) as Resolver<{ id: string }, string>,
  },
  Node: {
    __resolveType: (node: object) => (node instanceof Task ? 'Task' : node instanceof TaskExecution ? 'TaskExecution' : 'TaskEvent'),
  },
  Task: {
    parent: ((task, _, ctx) => ctx.tasks.parentOf(task)) as Resolver<NoArgs, Task | null, Task>,
    dependencies: ((task, _, ctx) => ctx.loaders.dependenciesOf.load(task.id)) as Resolver<NoArgs, Task[], Task>,
    dependents: ((task, _, ctx) => ctx.loaders.dependentsOf.load(task.id)) as Resolver<NoArgs, Task[], Task>,
    isBlocked: (async (task, _, ctx) => (await ctx.loaders.blockersOf.load(task.id)).length > 0) as Resolver<NoArgs, boolean, Task>,
    availableTransitions: (async (task, _, ctx) =>
      availableTransitions(task.status, (await ctx.loaders.blockersOf.load(task.id)).length > 0)) as Resolver<NoArgs, TaskStatus[], Task>,
    executions: ((task, args, ctx) =>
      ctx.loader(pageKey('executions', args), () => taskExecutionsLoader(ctx.em, args)).load(task.id)) as Resolver<
      TaskPageArgs,
      Page<TaskExecution>,
      Task
    >,
    events: ((task, args, ctx) => ctx.loader(pageKey('events', args), () => taskEventsLoader(ctx.em, args)).load(task.id)) as Resolver<
      TaskPageArgs,
      Page<TaskEvent>,
      Task
    >,
  },
  TaskExecution: {
    task: (async (execution, _, ctx) => ctx.loaders.taskById.load(execution.task.id)) as Resolver<NoArgs, Task | null, TaskExecution>,
  },
  TaskEvent: {
    id: ((event) => String(event.id)) as Resolver<NoArgs, string, TaskEvent>,
    task: ((event, _, ctx) => ctx.loaders.taskById.load(event.taskId)) as Resolver<NoArgs, Task | null, TaskEvent>,
    cursor: ((event) => feedCursor(event)) as Resolver<NoArgs, string, TaskEvent>,
  },
  TaskExecutionConnection: connectionResolvers<TaskExecution>(),
  TaskEventConnection: connectionResolvers<TaskEvent>(),
};
