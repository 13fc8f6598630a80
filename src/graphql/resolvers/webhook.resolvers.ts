/**
 * Webhook resolvers: thin translations between GraphQL arguments and the webhook service (src/webhooks), typed with
 * the resolver types `npm run codegen` generates from schema.graphql. The service answers with views that hold only
 * the API's fields (never a secret beyond the one create and rotate return); the connections are built here.
 */
import type { GraphQLResolveInfo } from 'graphql';
import type { GraphQLContext } from '../context.js';
import type { Resolvers, ResolversTypes } from '../generated/resolvers-types.js';
import { connectionResolvers } from './connection.resolvers.js';
import { connectionSelection } from '../lookahead.js';
import type { Page } from '../../pagination.js';
import type { TaskEvent } from '../../events/event.entity.js';
import type { WebhookDelivery } from '../../webhooks/delivery.entity.js';
import { deliveryView } from '../../webhooks/webhook.view.js';

/** A Relay connection object from a page; `totalCount` is counted only when the operation selects it. */
async function connectionOf<T>(page: Page<T>, info: GraphQLResolveInfo) {
  const shared = connectionResolvers<T>();
  // Not selected, the count is never read: 0 stands in for the statement it would cost.
  const totalCount = connectionSelection(info).fields.has('totalCount') ? await page.totalCount() : 0;
  return { edges: shared.edges(page), nodes: page.rows, pageInfo: shared.pageInfo(page), totalCount };
}

/** A delivery with its event, loaded (batched with the page's other deliveries) only when asked for. */
function deliveryNode(delivery: WebhookDelivery, ctx: GraphQLContext): ResolversTypes['WebhookDelivery'] {
  return {
    ...deliveryView(delivery),
    get event() {
      return eventOf(delivery.eventId, ctx);
    },
  };
}

async function eventOf(eventId: string, ctx: GraphQLContext): Promise<TaskEvent> {
  const event = await ctx.loaders.eventById.load(eventId);
  // Events are never deleted, and a delivery is made only for an event that exists.
  if (!event) throw new Error(`event ${eventId} of a webhook delivery does not exist`);
  return event;
}

function mapPage<T, U>(page: Page<T>, map: (row: T) => U): Page<U> {
  return { ...page, rows: page.rows.map(map) };
}

/**
 * Wraps a mutation: once it succeeded, the operation's loaders forget what they cached (as the task mutations do),
 * so later fields and mutations of the request read what it wrote.
 */
async function fresh<T>(ctx: GraphQLContext, result: Promise<T>): Promise<T> {
  const value = await result;
  ctx.mutated();
  return value;
}

export const webhookResolvers = {
  Query: {
    webhooks: async (_, args, ctx, info) => connectionOf(await ctx.webhooks.list(args), info),
    webhook: (_, { id }, ctx) => ctx.webhooks.get(id),
    webhookDeliveries: async (_, { webhookId, status, first, after }, ctx, info) =>
      connectionOf(mapPage(await ctx.webhooks.deliveries(webhookId, status, { first, after }), (d) => deliveryNode(d, ctx)), info),
  },
  Mutation: {
    createWebhook: (_, { input }, ctx) => fresh(ctx, ctx.webhooks.create(input)),
    updateWebhook: (_, { id, input }, ctx) => fresh(ctx, ctx.webhooks.update(id, input)),
    rotateWebhookSecret: (_, { id }, ctx) => fresh(ctx, ctx.webhooks.rotateSecret(id)),
    deleteWebhook: (_, { id }, ctx) => fresh(ctx, ctx.webhooks.delete(id)),
    redeliverWebhookEvent: async (_, { webhookId, eventId }, ctx) => deliveryNode(await fresh(ctx, ctx.webhooks.redeliver(webhookId, eventId)), ctx),
  },
} satisfies Resolvers;
