/**
 * `task-tracker webhooks ...`: managing webhooks from the command line, on the typed client's webhook operations.
 * cli.ts parses the arguments (these options are among its own), makes the client and turns errors into exit codes.
 */
import {
  CreateWebhookDocument,
  DeleteWebhookDocument,
  ListWebhookDeliveriesDocument,
  ListWebhooksDocument,
  RedeliverWebhookEventDocument,
  RotateWebhookSecretDocument,
  ShowWebhookDocument,
  TaskTrackerError,
  UpdateWebhookDocument,
  type TaskEventKind,
  type TaskTrackerClient,
  type UpdateWebhookInput,
  type WebhookDeliveryDetailFragment,
  type WebhookDeliveryStatus,
  type WebhookDetailFragment,
  type WebhookFilterInput,
} from '@task-tracker/client';
import { printDetail, printTable } from './cli-output.js';

export const WEBHOOKS_USAGE = `usage: task-tracker webhooks <list|show|create|update|enable|disable|rotate-secret|delete|deliveries|redeliver> [options]
  list          [--first N] [--after CURSOR]
  show          ID
  create        --target URL [--kind K,..] [--task ID] [--assignee A] [--tag T]... [--description D]
  update        ID [--target URL] [--kind K,..|all] [--task ID] [--assignee A] [--tag T]... [--no-filter] [--description D]
  enable        ID
  disable       ID
  rotate-secret ID
  delete        ID
  deliveries    ID [--status pending|delivered|failed] [--first N] [--after CURSOR]
  redeliver     ID EVENT_ID
  --target is the webhook's URL (--url stays the server's). No --kind, or --kind all: every event kind.
  --task, --assignee and --tag make the filter (every one given must match); on update they replace the old
  filter whole, and --no-filter removes it. --description "" clears the description.`;

/** Options only the webhooks commands take; cli.ts parses them with its own. */
export const WEBHOOK_OPTIONS = {
  target: { type: 'string' },
  kind: { type: 'string' },
  task: { type: 'string' },
  'no-filter': { type: 'boolean', default: false },
} as const;

/** The parsed options the webhooks commands read (a subset of cli.ts's). */
export interface WebhookOptionValues {
  target?: string;
  kind?: string;
  task?: string;
  'no-filter'?: boolean;
  assignee?: string;
  tag?: string[];
  description?: string;
  status?: string;
  first?: string;
  after?: string;
}

/** What cli.ts hands a command: the client, output, and how to fail with a usage error (exit code 2). */
export interface CommandContext {
  client: TaskTrackerClient;
  out: (line: string) => void;
  /** Prints `value` as JSON with --json, else runs `human`. */
  show: (value: unknown, human: () => void) => void;
  usage: (message: string) => Error;
}

const NOT_SHOWN_AGAIN = 'Store this secret now: it signs every request (x-webhook-signature) and will not be shown again.';

/** `--kind created,status_changed` as kinds; `all` (or nothing) is every kind, the empty list. */
function kindsOf(value: string): TaskEventKind[] {
  const kinds = value.split(',').map((v) => v.trim().toUpperCase()).filter(Boolean);
  return kinds.length === 1 && kinds[0] === 'ALL' ? [] : (kinds as TaskEventKind[]);
}

/** The filter the options give; undefined when they give none. */
function filterOf(values: WebhookOptionValues): WebhookFilterInput | undefined {
  if (values.task === undefined && values.assignee === undefined && values.tag === undefined) return undefined;
  return {
    ...(values.task !== undefined ? { taskId: values.task } : {}),
    ...(values.assignee !== undefined ? { assignee: values.assignee } : {}),
    ...(values.tag !== undefined ? { tagsAny: values.tag } : {}),
  };
}

/** A filter in words: "every task", or what every matching event must have. */
function describeFilter(filter: WebhookDetailFragment['filter']): string {
  const parts = [
    ...(filter.taskId ? [`task ${filter.taskId}`] : []),
    ...(filter.assignee ? [`assignee ${filter.assignee}`] : []),
    ...(filter.tagsAny?.length ? [`tags any of ${filter.tagsAny.join(', ')}`] : []),
  ];
  return parts.length ? parts.join('; ') : 'every task';
}

/** A webhook as a human reads it: kinds and filter in words. */
function webhookRow(w: WebhookDetailFragment): Record<string, unknown> {
  const { id, url, enabled, kinds, filter, ...rest } = w;
  return { id, url, enabled, kinds: kinds.length ? kinds : 'every kind', filter: describeFilter(filter), ...rest };
}

/** A delivery as a human reads it: the event's kind and task beside its id. */
function deliveryRow(d: WebhookDeliveryDetailFragment): Record<string, unknown> {
  const { event, lastStatusCode, lastLatencyMs, ...rest } = d;
  return { ...rest, kind: event.kind, taskId: event.taskId, statusCode: lastStatusCode, latencyMs: lastLatencyMs };
}

/**
 * Runs `task-tracker webhooks <command>`; returns the exit code, or throws a usage error or a TaskTrackerError.
 *
 * @param command the subcommand (list, show, create, ...)
 * @param args the positional arguments after it (ID, EVENT_ID)
 * @param values the parsed options
 * @param ctx the client, output and usage errors of cli.ts
 */
export async function runWebhooks(command: string, args: readonly string[], values: WebhookOptionValues, ctx: CommandContext): Promise<number> {
  const { client, out, show, usage } = ctx;
  const needId = () => {
    const id = args[0];
    if (!id) throw usage(`task-tracker webhooks ${command} needs a webhook ID`);
    return id;
  };
  const pageSize = () => {
    const first = values.first === undefined ? 20 : Number(values.first);
    if (!Number.isInteger(first)) throw usage('--first takes a whole number');
    return first;
  };
  const nextPage = (shown: number, total: number, pageInfo: { hasNextPage: boolean; endCursor?: string | null }) =>
    `${shown} of ${total}${pageInfo.hasNextPage ? `; next page: --after ${pageInfo.endCursor}` : ''}`;

  switch (command) {
    case 'list': {
      const { webhooks } = await client.request(ListWebhooksDocument, { first: pageSize(), after: values.after ?? null });
      show(webhooks, () => {
        printTable(out, webhooks.nodes.map(webhookRow), ['id', 'url', 'enabled', 'kinds', 'filter', 'description']);
        out(nextPage(webhooks.nodes.length, webhooks.totalCount, webhooks.pageInfo));
      });
      return 0;
    }
    case 'show': {
      const id = needId();
      const { webhook } = await client.request(ShowWebhookDocument, { id });
      if (!webhook) throw new TaskTrackerError(`Webhook ${id} does not exist`, 'NOT_FOUND');
      show(webhook, () => printDetail(out, webhookRow(webhook)));
      return 0;
    }
    case 'create': {
      if (!values.target) throw usage('task-tracker webhooks create needs --target URL, where events are sent (--url is the server\'s)');
      if (values['no-filter']) throw usage('--no-filter is for update: a new webhook without --task, --assignee or --tag gets every task\'s events');
      const filter = filterOf(values);
      const { createWebhook } = await client.request(CreateWebhookDocument, {
        input: {
          url: values.target,
          ...(values.kind !== undefined ? { kinds: kindsOf(values.kind) } : {}),
          ...(filter ? { filter } : {}),
          description: values.description || null,
        },
      });
      show(createWebhook, () => {
        printDetail(out, { ...webhookRow(createWebhook.webhook), secret: createWebhook.secret });
        out(NOT_SHOWN_AGAIN);
      });
      return 0;
    }
    case 'update': {
      const id = needId();
      const filter = filterOf(values);
      if (filter && values['no-filter']) throw usage('give either a new filter (--task, --assignee, --tag) or --no-filter, not both');
      const input: UpdateWebhookInput = {
        ...(values.target !== undefined ? { url: values.target } : {}),
        ...(values.kind !== undefined ? { kinds: kindsOf(values.kind) } : {}),
        ...(filter ? { filter } : values['no-filter'] ? { filter: null } : {}),
        ...(values.description !== undefined ? { description: values.description || null } : {}),
      };
      if (Object.keys(input).length === 0) throw usage('task-tracker webhooks update needs something to change: --target, --kind, --task, --assignee, --tag, --no-filter or --description');
      const { updateWebhook } = await client.request(UpdateWebhookDocument, { id, input });
      show(updateWebhook, () => printDetail(out, webhookRow(updateWebhook)));
      return 0;
    }
    case 'enable':
    case 'disable': {
      const { updateWebhook: w } = await client.request(UpdateWebhookDocument, { id: needId(), input: { enabled: command === 'enable' } });
      show(w, () => out(`${w.id} is now ${w.enabled ? 'enabled' : 'disabled'}`));
      return 0;
    }
    case 'rotate-secret': {
      const { rotateWebhookSecret } = await client.request(RotateWebhookSecretDocument, { id: needId() });
      const { webhook, secret } = rotateWebhookSecret;
      show(rotateWebhookSecret, () => {
        out(`secret  ${secret}`);
        out(NOT_SHOWN_AGAIN);
        if (webhook.previousSecretExpiresAt) out(`The previous secret signs too until ${String(webhook.previousSecretExpiresAt)}: switch receivers over before then.`);
      });
      return 0;
    }
    case 'delete': {
      const { deleteWebhook } = await client.request(DeleteWebhookDocument, { id: needId() });
      show({ id: deleteWebhook }, () => out(`${deleteWebhook} deleted, with its delivery records`));
      return 0;
    }
    case 'deliveries': {
      const { webhookDeliveries: page } = await client.request(ListWebhookDeliveriesDocument, {
        webhookId: needId(),
        status: values.status ? (values.status.trim().toUpperCase() as WebhookDeliveryStatus) : null,
        first: pageSize(),
        after: values.after ?? null,
      });
      show(page, () => {
        const columns = ['id', 'eventId', 'kind', 'status', 'redelivery', 'attempts', 'statusCode', 'latencyMs', 'nextAttemptAt', 'lastError'];
        printTable(out, page.nodes.map(deliveryRow), columns);
        out(nextPage(page.nodes.length, page.totalCount, page.pageInfo));
      });
      return 0;
    }
    case 'redeliver': {
      const webhookId = needId();
      const eventId = args[1];
      if (!eventId) throw usage('task-tracker webhooks redeliver needs a webhook ID and an EVENT_ID (see: task-tracker webhooks deliveries ID)');
      const { redeliverWebhookEvent } = await client.request(RedeliverWebhookEventDocument, { webhookId, eventId });
      show(redeliverWebhookEvent, () => printDetail(out, deliveryRow(redeliverWebhookEvent)));
      return 0;
    }
    default:
      throw usage(`unknown command "${command}"\n${WEBHOOKS_USAGE}`);
  }
}
