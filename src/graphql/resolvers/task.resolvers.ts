/**
 * Task resolvers: thin translations between GraphQL arguments and the services, typed with the resolver types
 * `npm run codegen` generates from schema.graphql. Everything a page of tasks asks for per task goes through the
 * operation's DataLoaders.
 */
import type { GraphQLContext } from '../context.js';
import type { Resolvers } from '../generated/resolvers-types.js';
import { connectionResolvers } from './connection.resolvers.js';
import { TaskEvent } from '../../events/event.entity.js';
import { TaskExecution } from '../../tasks/execution.entity.js';
import { feedCursor, readFeed, taskEventsLoader } from '../../events/event.repository.js';
import { taskExecutionsLoader } from '../../tasks/execution.repository.js';
import type { TaskPageArgs } from '../../db/per-task-pages.js';
import type { TaskView } from '../../tasks/task.entity.js';
import { availableTransitions } from '../../tasks/transitions.js';
import { parseId } from '../../tasks/task.validation.js';

/** `node(id)`: event ids are numbers, task and execution ids UUIDs. */
async function findNode(id: string, ctx: GraphQLContext): Promise<TaskView | TaskExecution | TaskEvent | null> {
  if (/^\d{1,19}$/.test(id)) return ctx.loaders.eventById.load(id);
  const uuid = parseId(id);
  return (await ctx.loaders.taskById.load(uuid)) ?? (await ctx.loaders.executionById.load(uuid));
}

/**
 * Wraps a mutation: once it succeeded, the operation's loaders forget what they cached, so its result's nested
 * fields and the next mutations of the request read what it wrote (reads are plain views, see task.loaders.ts).
 */
async function fresh<T>(ctx: GraphQLContext, result: Promise<T>): Promise<T> {
  const value = await result;
  ctx.mutated();
  return value;
}

const pageKey = (kind: string, args: TaskPageArgs) => `${kind}:${JSON.stringify([args.first ?? null, args.after ?? null])}`;
/**
 * Related data answered from what the operation already read when it can (a value, not a promise: see
 * TaskLoaders.peekTask), else loaded through the batching loaders.
 */
function parentOf(task: TaskView, ctx: GraphQLContext): TaskView | null | Promise<TaskView | null> {
  const parentId = task.parent?.id;
  if (!parentId) return null;
  const known = ctx.loaders.peekTask(parentId);
  return known !== undefined ? known : ctx.loaders.taskById.load(parentId);
}

function dependenciesOf(task: TaskView, ctx: GraphQLContext): TaskView[] | Promise<TaskView[]> {
  return ctx.loaders.peekDependencies(task.id) ?? ctx.loaders.dependenciesOf.load(task.id);
}

function blocked(task: TaskView, ctx: GraphQLContext): boolean | Promise<boolean> {
  const known = ctx.loaders.peekBlockers(task.id);
  return known ? known.length > 0 : ctx.loaders.blockersOf(task.id).then((blockers) => blockers.length > 0);
}

export const taskResolvers = {
  Query: {
    task: (_, { id }, ctx) => ctx.loaders.taskById.load(parseId(id)),
    node: (_, { id }, ctx) => findNode(id, ctx),
    taskEvents: (_, args, ctx) => readFeed(ctx.em, args),
  },
  Mutation: {
    createTask: (_, { input }, ctx) => fresh(ctx, ctx.tasks.create(input)),
    createTasks: (_, { inputs }, ctx) => fresh(ctx, ctx.tasks.createMany(inputs)),
    updateTask: (_, { id, input, expectedVersion }, ctx) => fresh(ctx, ctx.tasks.update(id, input, expectedVersion)),
    updateTasks: (_, { ids, input }, ctx) => fresh(ctx, ctx.tasks.updateMany(ids, input)),
    transitionTask: (_, { id, to, expectedVersion, result, errorMessage }, ctx) => fresh(ctx, ctx.status.transition(id, to, expectedVersion, { result, errorMessage })),
    startTask: (_, { id }, ctx) => fresh(ctx, ctx.status.transition(id, 'IN_PROGRESS')),
    completeTask: (_, { id, result }, ctx) => fresh(ctx, ctx.status.transition(id, 'COMPLETED', null, { result })),
    failTask: (_, { id, errorMessage }, ctx) => fresh(ctx, ctx.status.transition(id, 'FAILED', null, { errorMessage })),
    retryTask: (_, { id }, ctx) => fresh(ctx, ctx.status.transition(id, 'PENDING')),
    reportProgress: (_, { id, progress, message, level }, ctx) => fresh(ctx, ctx.status.reportProgress(id, progress, message, level ?? 'INFO')),
    addTaskDependency: (_, { taskId, dependsOnId }, ctx) => fresh(ctx, ctx.dependencies.add(taskId, dependsOnId)),
    removeTaskDependency: (_, { taskId, dependsOnId }, ctx) => fresh(ctx, ctx.dependencies.remove(taskId, dependsOnId)),
    archiveTask: (_, { id }, ctx) => fresh(ctx, ctx.removal.archive(id)),
    unarchiveTask: (_, { id }, ctx) => fresh(ctx, ctx.removal.unarchive(id)),
    deleteTask: (_, { id }, ctx) => fresh(ctx, ctx.removal.delete(id)),
  },
  Node: {
    // Tasks are views or Task entities; executions and events are entities (mapped on the operation's fork).
    __resolveType: (node) => (node instanceof TaskExecution ? 'TaskExecution' : node instanceof TaskEvent ? 'TaskEvent' : 'Task'),
  },
  Task: {
    parent: (task, _, ctx) => parentOf(task, ctx),
    dependencies: (task, _, ctx) => dependenciesOf(task, ctx),
    dependents: (task, _, ctx) => ctx.loaders.dependentsOf.load(task.id),
    isBlocked: (task, _, ctx) => blocked(task, ctx),
    availableTransitions: (task, _, ctx) => {
      const isBlocked = blocked(task, ctx);
      return typeof isBlocked === 'boolean' ? availableTransitions(task.status, isBlocked) : isBlocked.then((b) => availableTransitions(task.status, b));
    },
    executions: (task, args, ctx) => ctx.loader(pageKey('executions', args), () => taskExecutionsLoader(ctx.em, args)).load(task.id),
    events: (task, args, ctx) => ctx.loader(pageKey('events', args), () => taskEventsLoader(ctx.em, args)).load(task.id),
  },
  TaskExecution: {
    task: async (execution, _, ctx) => (await ctx.loaders.taskById.load(execution.task.id)) as TaskView,
  },
  TaskEvent: {
    id: (event) => String(event.id),
    task: (event, _, ctx) => ctx.loaders.taskById.load(event.taskId),
    cursor: (event) => feedCursor(event),
  },
  TaskExecutionConnection: connectionResolvers<TaskExecution>(),
  TaskEventConnection: connectionResolvers<TaskEvent>(),
} satisfies Resolvers;
