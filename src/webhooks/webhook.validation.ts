/**
 * Input rules of docs/API.md ("Webhooks") for creating and changing webhooks. Each failure is a BAD_USER_INPUT
 * naming the field (`url`, `kinds`, `filter.taskId`, `filter.assignee`, `filter.tagsAny`, `description`).
 */
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import { AppError } from '../errors.js';
import type { CreateWebhookInput, UpdateWebhookInput, WebhookFilterInput } from '../generated/schema-types.js';
import type { EventKind } from '../events/event.entity.js';
import { LIMITS, parseId } from '../tasks/task.validation.js';
import { addressRefusal, checkWebhookUrl, hostOf, isPrivateAddress, UrlPolicyError } from './url-policy.js';

export const WEBHOOK_LIMITS = {
  descriptionMax: 500,
  tagsAnyMax: 20,
  /** How long a save waits for DNS before accepting the name unchecked (delivery checks it again). */
  dnsTimeoutMs: 2000,
} as const;

/** The filter columns of a webhook; all null: every task. */
export interface WebhookFilterFields {
  filterTaskId: string | null;
  filterAssignee: string | null;
  filterTagsAny: string[] | null;
}

/** A validated new webhook: what the caller chose, ready to insert. */
export interface NewWebhook extends WebhookFilterFields {
  url: string;
  kinds: EventKind[];
  description: string | null;
}

/** A validated change: only the fields the input carries. */
export interface WebhookChanges extends Partial<WebhookFilterFields> {
  url?: string;
  kinds?: EventKind[];
  description?: string | null;
  enabled?: boolean;
}

/** How to resolve a host name: every address, as the system resolver gives them (replaceable in unit tests). */
export type Resolver = (host: string) => Promise<string[]>;

const systemResolver: Resolver = async (host) => (await dns.lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/**
 * Checks a URL as written (see url-policy.ts) and, for a host name, every address it resolves to now, so a name
 * pointing at 127.0.0.1 is refused when saved, not only at delivery. A name that does not resolve (unknown, no
 * DNS, slower than {@link WEBHOOK_LIMITS}.dnsTimeoutMs) is accepted: delivery resolves it again and records why it
 * failed. Returns the normalized URL.
 *
 * @throws AppError BAD_USER_INPUT (field `url`) with the policy's reason.
 */
export async function parseUrl(raw: string, allowPrivate: boolean, resolve: Resolver = systemResolver): Promise<string> {
  let url: URL;
  try {
    url = checkWebhookUrl(raw, allowPrivate);
  } catch (err) {
    if (err instanceof UrlPolicyError) throw AppError.badInput(err.message, 'url');
    throw err;
  }
  const host = hostOf(url);
  if (!isIP(host)) {
    const addresses = await resolveWithin(host, resolve, WEBHOOK_LIMITS.dnsTimeoutMs);
    for (const address of addresses) {
      const refusal = addressRefusal(address, allowPrivate);
      if (refusal) throw AppError.badInput(`url is refused: ${host} resolves to ${refusal}`, 'url');
      // As at delivery (checkedLookup): plain http only to private addresses.
      if (url.protocol === 'http:' && !isPrivateAddress(address)) {
        throw AppError.badInput(`url must be https unless its host is a private address (${host} resolves to ${address})`, 'url');
      }
    }
  }
  return url.href;
}

/** The addresses `host` resolves to; none when it does not resolve in time or at all. */
async function resolveWithin(host: string, resolve: Resolver, timeoutMs: number): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string[]>((done) => {
    timer = setTimeout(() => done([]), timeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([resolve(host).catch(() => []), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Event kinds without duplicates, in the order given; empty: every kind. */
export function parseKinds(kinds: readonly EventKind[]): EventKind[] {
  return [...new Set(kinds)];
}

/** A filter input as columns; null or `{}` (every field null): no filter. */
export function parseFilter(filter: WebhookFilterInput | null | undefined): WebhookFilterFields {
  const taskId = filter?.taskId == null ? null : parseId(filter.taskId, 'filter.taskId');
  let assignee: string | null = null;
  if (filter?.assignee != null) {
    assignee = filter.assignee.trim();
    if (assignee.length < 1 || assignee.length > LIMITS.nameMax) {
      throw AppError.badInput(`filter.assignee must be 1..${LIMITS.nameMax} characters after trimming`, 'filter.assignee');
    }
  }
  let tagsAny: string[] | null = null;
  if (filter?.tagsAny != null) {
    const tags = filter.tagsAny;
    if (tags.length < 1 || tags.length > WEBHOOK_LIMITS.tagsAnyMax) {
      throw AppError.badInput(`filter.tagsAny must hold 1..${WEBHOOK_LIMITS.tagsAnyMax} tags (got ${tags.length}); omit it for every tag`, 'filter.tagsAny');
    }
    for (const tag of tags) {
      if (tag.length < 1 || tag.length > LIMITS.tagMax) {
        throw AppError.badInput(`each tag must be 1..${LIMITS.tagMax} characters (got ${JSON.stringify(tag.slice(0, 80))})`, 'filter.tagsAny');
      }
    }
    // Duplicates collapse to the first, as in a task's tags.
    tagsAny = [...new Set(tags)];
  }
  return { filterTaskId: taskId, filterAssignee: assignee, filterTagsAny: tagsAny };
}

/** Trimmed; empty or null: none. */
export function parseDescription(value: string | null | undefined): string | null {
  const text = value?.trim() ?? '';
  if (text.length > WEBHOOK_LIMITS.descriptionMax) {
    throw AppError.badInput(`description must be at most ${WEBHOOK_LIMITS.descriptionMax} characters (got ${text.length})`, 'description');
  }
  return text === '' ? null : text;
}

/** Applies every rule to a create input (the URL's DNS check included). */
export async function validateCreate(input: CreateWebhookInput, allowPrivate: boolean, resolve?: Resolver): Promise<NewWebhook> {
  // The cheap checks first: a bad filter is refused without waiting for DNS.
  const kinds = parseKinds(input.kinds ?? []);
  const filter = parseFilter(input.filter);
  const description = parseDescription(input.description);
  return { url: await parseUrl(input.url, allowPrivate, resolve), kinds, ...filter, description };
}

/**
 * Applies every rule to an update input: an absent field stays; `filter: null` and `description: null` clear;
 * null for `url`, `kinds` or `enabled` is refused (they always have a value).
 */
export async function validateUpdate(input: UpdateWebhookInput, allowPrivate: boolean, resolve?: Resolver): Promise<WebhookChanges> {
  const changes: WebhookChanges = {};
  for (const field of ['url', 'kinds', 'enabled'] as const) {
    if (input[field] === null) throw AppError.badInput(`${field} cannot be null`, field);
  }
  if (input.kinds != null) changes.kinds = parseKinds(input.kinds);
  if (input.filter !== undefined) Object.assign(changes, parseFilter(input.filter));
  if (input.description !== undefined) changes.description = parseDescription(input.description);
  if (input.enabled != null) changes.enabled = input.enabled;
  if (input.url != null) changes.url = await parseUrl(input.url, allowPrivate, resolve);
  return changes;
}

/** Checks a webhook id (a UUID); returns it lower-cased. BAD_USER_INPUT naming `field` otherwise, as for task ids. */
export function parseWebhookId(value: string, field = 'id'): string {
  return parseId(value, field);
}

/** The largest bigint: event ids above it cannot exist. */
const MAX_EVENT_ID = 9_223_372_036_854_775_807n;

/**
 * Checks an event id: decimal digits, as `node(id)` reads event ids. BAD_USER_INPUT (field `field`) for anything
 * else; `undefined` for a number no event can have (the caller answers NOT_FOUND).
 */
export function parseEventId(value: string, field = 'eventId'): string | undefined {
  if (!/^\d{1,19}$/.test(value)) throw AppError.badInput(`${field} must be an event id (decimal digits), got ${JSON.stringify(value.slice(0, 80))}`, field);
  const id = BigInt(value);
  return id > MAX_EVENT_ID ? undefined : id.toString();
}
