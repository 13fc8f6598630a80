/**
 * `Subscription.taskEvents`: parses the arguments and opens a stream on the instance's hub. The hub reaches the
 * resolver through the subscription's context (bound by the WebSocket server), so an operation that arrives
 * any other way (a subscription POSTed over HTTP) is refused with a message that says where to go.
 */
import type { GraphQLContext } from '../graphql/context.js';
import { AppError } from '../errors.js';
import type { Resolvers, SubscriptionTaskEventsArgs } from '../graphql/generated/resolvers-types.js';
import type { TaskEvent } from '../events/event.entity.js';
import { parseId } from '../tasks/task.validation.js';
import { parseFeedCursor } from '../events/feed.position.js';
import type { EventHub } from './hub.js';

/** What a WebSocket subscription's context carries besides the usual {@link GraphQLContext}. */
export interface FeedScope {
  hub: EventHub;
  /** Called before each event is resolved: the context's fork and loaders start fresh for every event. */
  beforeEach: () => void;
}

const scopes = new WeakMap<object, FeedScope>();

/** Makes `ctx` a subscription context (called by the WebSocket server for each subscription). */
export function bindFeedScope(ctx: GraphQLContext, scope: FeedScope): void {
  scopes.set(ctx, scope);
}

function openTaskEvents(args: Partial<SubscriptionTaskEventsArgs>, ctx: GraphQLContext): Promise<AsyncIterableIterator<TaskEvent>> {
  const scope = scopes.get(ctx);
  if (!scope) throw new AppError('BAD_REQUEST', 'Subscriptions run over WebSocket (the graphql-ws protocol) at /graphql', {}, { status: 400 });
  const after = args.after != null ? parseFeedCursor(args.after) : undefined;
  const taskId = args.taskId != null ? parseId(args.taskId, 'taskId') : undefined;
  const kinds = args.kinds != null ? new Set(args.kinds) : undefined;
  return scope.hub.subscribe({ filter: { taskId, kinds }, after, beforeEach: scope.beforeEach });
}

export const subscriptionResolvers = {
  Subscription: {
    taskEvents: {
      subscribe: (_, args, ctx) => openTaskEvents(args, ctx),
      // The stream yields bare events; the field's value is the event itself.
      resolve: (event: TaskEvent) => event,
    },
  },
} satisfies Resolvers;
