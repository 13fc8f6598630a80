/**
 * Managing webhooks over HTTP against real PostgreSQL: create (validation, secret, feed position, the
 * WEBHOOK_MAX limit under concurrency), update (enable, disable, re-enable resuming FAILED deliveries), rotation,
 * delete, redeliver, both listings, and the write scope with authentication on. The delivery worker is off
 * (WEBHOOK_WORKER=false): these tests look at rows the worker would otherwise go on to change.
 */
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { useServer, type GqlResponse } from '../helpers/server.js';
import { feedCaughtUp } from '../helpers/feed.js';
import type { TestDatabase } from '../helpers/database.js';

const main = useServer('wh_manage', { WEBHOOK_WORKER: 'false' });
const limited = useServer('wh_limit', { WEBHOOK_WORKER: 'false', WEBHOOK_MAX: '2', WEBHOOK_SECRET_OVERLAP_MS: '0' });
const AUTH_SECRET = 'a-test-secret-that-is-long-enough-for-hs256';
const authed = useServer('wh_scope', { WEBHOOK_WORKER: 'false', AUTH_JWT_SECRET: AUTH_SECRET });

const { server, db } = main;
type Server = typeof server;

const WEBHOOK = 'id url kinds filter { taskId assignee tagsAny } description enabled disabledReason disabledAt cursor previousSecretExpiresAt createdAt updatedAt';
const DELIVERY = 'id webhookId eventId redelivery status attempts lastStatusCode lastLatencyMs lastError lastAttemptAt nextAttemptAt createdAt deliveredAt';

interface WebhookOut {
  id: string;
  url: string;
  kinds: string[];
  filter: { taskId: string | null; assignee: string | null; tagsAny: string[] | null };
  description: string | null;
  enabled: boolean;
  disabledReason: string | null;
  disabledAt: string | null;
  cursor: string;
  previousSecretExpiresAt: string | null;
  createdAt: string;
  updatedAt: string;
}
interface DeliveryOut {
  id: string;
  webhookId: string;
  eventId: string;
  redelivery: boolean;
  status: string;
  attempts: number;
  nextAttemptAt: string | null;
  createdAt: string;
  event?: { id: string; kind: string; taskId: string };
}
interface Connection<T> {
  edges: Array<{ cursor: string; node: T }>;
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; endCursor: string | null };
  totalCount?: number;
}

const CREATE = `mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { secret webhook { ${WEBHOOK} } } }`;

function ok<T>(res: GqlResponse<T>): T {
  expect(res.body.errors).toBeUndefined();
  return res.body.data!;
}

function refusal(res: GqlResponse): { message: string; extensions: Record<string, unknown> } {
  const error = res.body.errors?.[0];
  expect(error, 'an error').toBeDefined();
  return { message: error!.message, extensions: error!.extensions ?? {} };
}

async function create(input: Record<string, unknown>, on: Server = server): Promise<{ secret: string; webhook: WebhookOut }> {
  return ok(await on.gql<{ createWebhook: { secret: string; webhook: WebhookOut } }>(CREATE, { input })).createWebhook;
}

async function update(id: string, input: Record<string, unknown>): Promise<GqlResponse<{ updateWebhook: WebhookOut }>> {
  return server.gql(`mutation($id: ID!, $input: UpdateWebhookInput!) { updateWebhook(id: $id, input: $input) { ${WEBHOOK} } }`, { id, input });
}

async function rows<T>(database: TestDatabase, text: string, params: unknown[] = []): Promise<T[]> {
  const c = await database.client();
  try {
    return (await c.query(text, params)).rows as T[];
  } finally {
    await c.end();
  }
}

async function count(database: TestDatabase, text: string, params: unknown[] = []): Promise<number> {
  return (await rows<{ n: number }>(database, text, params))[0]!.n;
}

/** Creates a task (one CREATED event) and returns the event's id. */
async function newEvent(): Promise<{ taskId: string; eventId: string }> {
  const task = ok(await server.gql<{ createTask: { id: string; events: { nodes: Array<{ id: string }> } } }>('mutation { createTask(input: { title: "hooked" }) { id events { nodes { id } } } }')).createTask;
  return { taskId: task.id, eventId: task.events.nodes[0]!.id };
}

/** Inserts a delivery row as the worker would have left it. */
async function insertDelivery(webhookId: string, eventId: string, fields: { status: string; redelivery?: boolean; createdAt?: string; attempts?: number }): Promise<string> {
  const id = randomUUID();
  await rows(
    db,
    `insert into webhook_delivery (id, webhook_id, event_id, redelivery, status, attempts, last_status_code, last_error, last_attempt_at, next_attempt_at, retry_started_at, created_at)
     values ($1, $2, $3, $4, $5, $6, 500, 'HTTP 500', now(), null, now() - interval '1 day', coalesce($7::timestamptz, now()))`,
    [id, webhookId, eventId, fields.redelivery ?? false, fields.status, fields.attempts ?? 3, fields.createdAt ?? null],
  );
  return id;
}

describe('createWebhook', () => {
  it('returns the webhook and its secret once, starting at the feed head, with every kind and no filter by default', async () => {
    await newEvent();
    await feedCaughtUp(db);
    const head = ok(await server.gql<{ taskEvents: { pageInfo: { endCursor: string } } }>('{ taskEvents(last: 1) { pageInfo { endCursor } } }')).taskEvents.pageInfo.endCursor;
    const before = Date.now();
    const { secret, webhook } = await create({ url: 'https://93.184.215.14/hook' });
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(webhook).toMatchObject({
      url: 'https://93.184.215.14/hook',
      kinds: [],
      filter: { taskId: null, assignee: null, tagsAny: null },
      description: null,
      enabled: true,
      disabledReason: null,
      disabledAt: null,
      previousSecretExpiresAt: null,
      cursor: head,
    });
    expect(Date.parse(webhook.createdAt)).toBeGreaterThanOrEqual(before - 5);
    expect(webhook.updatedAt).toBe(webhook.createdAt);
    const [row] = await rows<{ secret: string; version: number; position_xid: string; position_id: string }>(
      db,
      'select secret, version, position_xid::text, position_id::text from webhook where id = $1',
      [webhook.id],
    );
    expect(row).toMatchObject({ secret, version: 1 });
    expect(Buffer.from(webhook.cursor, 'base64url').toString()).toBe(JSON.stringify([row!.position_xid, row!.position_id]));

    // Later events do not move it (the worker is off); the cursor is a taskEvents cursor that reads them.
    const later = await newEvent();
    await feedCaughtUp(db);
    const after = ok(await server.gql<{ taskEvents: { nodes: Array<{ id: string }> } }>(`{ taskEvents(after: "${webhook.cursor}") { nodes { id } } }`)).taskEvents.nodes;
    expect(after.map((e) => e.id)).toEqual([later.eventId]);
  });

  it('never shows the secret again: Webhook has no such field, and no read returns it', async () => {
    const { secret, webhook } = await create({ url: 'https://93.184.215.14/secretive' });
    const asked = await server.gql(`{ webhook(id: "${webhook.id}") { id secret } }`);
    expect(refusal(asked).extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    for (const field of ['previousSecret', 'leaseOwner', 'leaseExpiresAt']) {
      expect(refusal(await server.gql(`{ webhook(id: "${webhook.id}") { ${field} } }`)).extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    }
    const one = await server.gql(`{ webhook(id: "${webhook.id}") { ${WEBHOOK} } }`);
    const all = await server.gql(`{ webhooks(first: 100) { nodes { ${WEBHOOK} } } }`);
    const updated = await update(webhook.id, { description: 'still secret' });
    for (const res of [one, all, updated]) {
      expect(res.body.errors).toBeUndefined();
      expect(JSON.stringify(res.body)).not.toContain(secret);
      expect(JSON.stringify(res.body)).not.toContain('whsec_');
    }
  });

  it('normalizes what it keeps: kinds deduplicated, filter fields trimmed and lower-cased, tags deduplicated, description trimmed', async () => {
    const taskId = randomUUID().toUpperCase();
    const { webhook } = await create({
      url: 'https://93.184.215.14/filtered',
      kinds: ['CREATED', 'DELETED', 'CREATED'],
      filter: { taskId, assignee: '  ada  ', tagsAny: ['a', 'b', 'a'] },
      description: '  for the billing sync  ',
    });
    expect(webhook).toMatchObject({
      kinds: ['CREATED', 'DELETED'],
      filter: { taskId: taskId.toLowerCase(), assignee: 'ada', tagsAny: ['a', 'b'] },
      description: 'for the billing sync',
    });
    // Tags are kept as written, punctuation included (a text[] column, not a joined string), `NULL` as text.
    const odd = ['a,b', 'say "hi"', 'back\\slash', '{braces}', 'NULL', ' pad '];
    const punctuated = await create({ url: 'https://93.184.215.14/odd-tags', filter: { tagsAny: odd } });
    expect(punctuated.webhook.filter.tagsAny).toEqual(odd);
    expect(ok(await server.gql<{ webhook: WebhookOut }>(`{ webhook(id: "${punctuated.webhook.id}") { ${WEBHOOK} } }`)).webhook.filter.tagsAny).toEqual(odd);
    expect((await rows<{ t: string[] }>(db, 'select filter_tags_any as t from webhook where id = $1', [punctuated.webhook.id]))[0]!.t).toEqual(odd);
    const empty = await create({ url: 'https://93.184.215.14/empty', kinds: [], filter: {}, description: '   ' });
    expect(empty.webhook).toMatchObject({ kinds: [], filter: { taskId: null, assignee: null, tagsAny: null }, description: null });
  });

  it('refuses each invalid field with BAD_USER_INPUT naming it, and creates nothing', async () => {
    const before = await count(db, 'select count(*)::int as n from webhook');
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ filter: { taskId: 'not-a-uuid' } }, 'filter.taskId', /filter\.taskId must be a UUID/],
      [{ filter: { assignee: '   ' } }, 'filter.assignee', /1\.\.255 characters/],
      [{ filter: { assignee: 'x'.repeat(256) } }, 'filter.assignee', /1\.\.255 characters/],
      [{ filter: { tagsAny: [] } }, 'filter.tagsAny', /1\.\.20 tags/],
      [{ filter: { tagsAny: Array.from({ length: 21 }, (_, i) => `t${i}`) } }, 'filter.tagsAny', /1\.\.20 tags \(got 21\)/],
      [{ filter: { tagsAny: ['ok', ''] } }, 'filter.tagsAny', /each tag must be 1\.\.64 characters/],
      [{ filter: { tagsAny: ['x'.repeat(65)] } }, 'filter.tagsAny', /each tag must be 1\.\.64 characters/],
      [{ description: 'x'.repeat(501) }, 'description', /at most 500 characters \(got 501\)/],
      [{ url: 'https://127.0.0.1/hook' }, 'url', /loopback/],
    ];
    for (const [fields, field, message] of cases) {
      const res = await server.gql(CREATE, { input: { url: 'https://93.184.215.14/bad', ...fields } });
      const { extensions, message: text } = refusal(res);
      expect(extensions, JSON.stringify(fields).slice(0, 80)).toMatchObject({ code: 'BAD_USER_INPUT', field });
      expect(text).toMatch(message);
    }
    // An unknown kind never reaches the server's rules: the schema's enum refuses it.
    const unknownKind = await server.gql(CREATE, { input: { url: 'https://93.184.215.14/bad', kinds: ['EXPLODED'] } });
    expect(refusal(unknownKind).extensions.code).toBe('BAD_USER_INPUT');
    expect(unknownKind.status).toBe(400);
    const after = await count(db, 'select count(*)::int as n from webhook');
    expect(after).toBe(before);
  });
});

describe('the webhook limit (WEBHOOK_MAX=2)', () => {
  it('never lets concurrent creates pass the limit, and names WEBHOOK_MAX when it refuses', async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => limited.server.gql<{ createWebhook: { webhook: { id: string } } }>(CREATE, { input: { url: `https://93.184.215.14/race-${i}` } })),
    );
    const created = results.filter((r) => !r.body.errors);
    const refused = results.filter((r) => r.body.errors);
    expect(created).toHaveLength(2);
    expect(refused).toHaveLength(6);
    for (const res of refused) {
      expect(refusal(res).extensions).toMatchObject({ code: 'BAD_USER_INPUT', limit: 2 });
      expect(refusal(res).message).toMatch(/at most 2 webhooks \(WEBHOOK_MAX\)/);
    }
    const n = await count(limited.db, 'select count(*)::int as n from webhook');
    expect(n).toBe(2);

    // Deleting one makes room for one.
    const id = created[0]!.body.data!.createWebhook.webhook.id;
    expect(ok(await limited.server.gql<{ deleteWebhook: string }>(`mutation { deleteWebhook(id: "${id}") }`)).deleteWebhook).toBe(id);
    await create({ url: 'https://93.184.215.14/after-delete' }, limited.server);
    expect(refusal(await limited.server.gql(CREATE, { input: { url: 'https://93.184.215.14/one-too-many' } })).extensions).toMatchObject({ limit: 2 });
  });
});

describe('updateWebhook', () => {
  it('changes url, kinds, filter and description; an omitted field stays, filter: null and description: null clear', async () => {
    const { webhook } = await create({ url: 'https://93.184.215.14/v1', kinds: ['CREATED'], filter: { assignee: 'ada', tagsAny: ['x'] }, description: 'first' });
    const changed = ok(await update(webhook.id, { url: 'https://93.184.215.14/v2', kinds: ['UPDATED', 'UPDATED', 'DELETED'], filter: { tagsAny: ['y'] } })).updateWebhook;
    expect(changed).toMatchObject({ url: 'https://93.184.215.14/v2', kinds: ['UPDATED', 'DELETED'], filter: { taskId: null, assignee: null, tagsAny: ['y'] }, description: 'first' });
    expect(Date.parse(changed.updatedAt)).toBeGreaterThan(Date.parse(webhook.updatedAt) - 1);
    expect(changed.createdAt).toBe(webhook.createdAt);
    expect(changed.cursor).toBe(webhook.cursor);

    const cleared = ok(await update(webhook.id, { filter: null, description: null, kinds: [] })).updateWebhook;
    expect(cleared).toMatchObject({ url: 'https://93.184.215.14/v2', kinds: [], filter: { taskId: null, assignee: null, tagsAny: null }, description: null });
    const [row] = await rows<{ version: number; filter_tags_any: string[] | null }>(db, 'select version, filter_tags_any from webhook where id = $1', [webhook.id]);
    expect(row).toEqual({ version: 3, filter_tags_any: null });

    // The same values again change nothing: neither the version nor updatedAt moves.
    const same = ok(await update(webhook.id, { url: 'https://93.184.215.14/v2', kinds: [], description: null })).updateWebhook;
    expect(same.updatedAt).toBe(cleared.updatedAt);
    const [again] = await rows<{ version: number }>(db, 'select version from webhook where id = $1', [webhook.id]);
    expect(again!.version).toBe(3);
  });

  it('refuses bad values with the create rules, null where a value is needed, and unknown or malformed ids', async () => {
    const { webhook } = await create({ url: 'https://93.184.215.14/strict' });
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ url: null }, 'url'],
      [{ kinds: null }, 'kinds'],
      [{ enabled: null }, 'enabled'],
      [{ url: 'http://93.184.215.14/plain' }, 'url'],
      [{ filter: { taskId: '42' } }, 'filter.taskId'],
      [{ filter: { tagsAny: [] } }, 'filter.tagsAny'],
      [{ description: 'x'.repeat(501) }, 'description'],
    ];
    for (const [input, field] of cases) expect(refusal(await update(webhook.id, input)).extensions, field).toMatchObject({ code: 'BAD_USER_INPUT', field });
    const unknown = randomUUID();
    expect(refusal(await update(unknown, { description: 'x' })).extensions).toMatchObject({ code: 'NOT_FOUND', id: unknown });
    expect(refusal(await update('nope', { description: 'x' })).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'id' });
    const read = ok(await server.gql<{ webhook: WebhookOut }>(`{ webhook(id: "${webhook.id}") { ${WEBHOOK} } }`)).webhook;
    expect(read).toEqual(webhook);
  });

  it('disables (by a caller: no reason), and re-enabling resumes: FAILED feed deliveries go back to PENDING, due now', async () => {
    const { webhook } = await create({ url: 'https://93.184.215.14/flaky' });
    const disabled = ok(await update(webhook.id, { enabled: false })).updateWebhook;
    expect(disabled).toMatchObject({ enabled: false, disabledReason: null });
    expect(disabled.disabledAt).not.toBeNull();
    expect(disabled.updatedAt).toBe(disabled.disabledAt);

    // As the worker leaves it when it gives up: disabled with a reason, the failed event FAILED.
    const [e1, e2, e3] = [await newEvent(), await newEvent(), await newEvent()];
    await rows(db, `update webhook set disabled_reason = 'deliveries failed for 24 h', disabled_at = now() - interval '1 hour' where id = $1`, [webhook.id]);
    const failed = await insertDelivery(webhook.id, e1.eventId, { status: 'FAILED' });
    const failedRedelivery = await insertDelivery(webhook.id, e2.eventId, { status: 'FAILED', redelivery: true });
    const delivered = await insertDelivery(webhook.id, e3.eventId, { status: 'DELIVERED' });
    const position = async () => (await rows<{ p: string }>(db, `select position_xid::text || '/' || position_id::text as p from webhook where id = $1`, [webhook.id]))[0]!.p;
    const positionBefore = await position();

    const reason = ok(await server.gql<{ webhook: WebhookOut }>(`{ webhook(id: "${webhook.id}") { ${WEBHOOK} } }`)).webhook;
    expect(reason).toMatchObject({ enabled: false, disabledReason: 'deliveries failed for 24 h' });

    const before = (await rows<{ now: Date }>(db, 'select now() as now'))[0]!.now;
    const enabled = ok(await update(webhook.id, { enabled: true })).updateWebhook;
    expect(enabled).toMatchObject({ enabled: true, disabledReason: null, disabledAt: null, cursor: webhook.cursor });
    const states = await rows<{ id: string; status: string; next_attempt_at: Date | null; retry_started_at: Date; attempts: number }>(
      db,
      'select id, status, next_attempt_at, retry_started_at, attempts from webhook_delivery where webhook_id = $1',
      [webhook.id],
    );
    const byId = new Map(states.map((s) => [s.id, s]));
    expect(byId.get(failed)).toMatchObject({ status: 'PENDING', attempts: 3 });
    expect(byId.get(failed)!.next_attempt_at!.getTime()).toBeGreaterThanOrEqual(before.getTime() - 5);
    expect(byId.get(failed)!.retry_started_at.getTime()).toBe(byId.get(failed)!.next_attempt_at!.getTime());
    expect(byId.get(failedRedelivery)).toMatchObject({ status: 'FAILED' });
    expect(byId.get(delivered)).toMatchObject({ status: 'DELIVERED' });
    expect(await position()).toBe(positionBefore);

    // Enabling an enabled webhook changes nothing: a FAILED row stays FAILED.
    const stillFailed = await insertDelivery(webhook.id, (await newEvent()).eventId, { status: 'FAILED' });
    const same = ok(await update(webhook.id, { enabled: true })).updateWebhook;
    expect(same.updatedAt).toBe(enabled.updatedAt);
    expect(await rows(db, 'select status from webhook_delivery where id = $1', [stillFailed])).toEqual([{ status: 'FAILED' }]);
  });
});

describe('rotateWebhookSecret', () => {
  const ROTATE = (id: string) => `mutation { rotateWebhookSecret(id: "${id}") { secret webhook { ${WEBHOOK} } } }`;

  it('returns a new secret; the old one keeps signing for WEBHOOK_SECRET_OVERLAP_MS (24 h by default)', async () => {
    const { secret: first, webhook } = await create({ url: 'https://93.184.215.14/rotated' });
    const before = Date.now();
    const { secret, webhook: rotated } = ok(await server.gql<{ rotateWebhookSecret: { secret: string; webhook: WebhookOut } }>(ROTATE(webhook.id))).rotateWebhookSecret;
    expect(secret).toMatch(/^whsec_/);
    expect(secret).not.toBe(first);
    const expires = Date.parse(rotated.previousSecretExpiresAt!);
    expect(expires).toBeGreaterThanOrEqual(before + 86_400_000 - 5);
    expect(expires).toBeLessThanOrEqual(Date.now() + 86_400_000 + 5);
    expect(Date.parse(rotated.updatedAt)).toBeGreaterThanOrEqual(Date.parse(webhook.updatedAt));
    const [row] = await rows<{ secret: string; previous_secret: string | null }>(db, 'select secret, previous_secret from webhook where id = $1', [webhook.id]);
    expect(row).toEqual({ secret, previous_secret: first });

    // A second rotation keeps only the secret it replaces.
    const third = ok(await server.gql<{ rotateWebhookSecret: { secret: string } }>(ROTATE(webhook.id))).rotateWebhookSecret.secret;
    const [next] = await rows<{ secret: string; previous_secret: string | null }>(db, 'select secret, previous_secret from webhook where id = $1', [webhook.id]);
    expect(next).toEqual({ secret: third, previous_secret: secret });
  });

  it('with an overlap of 0 keeps no previous secret', async () => {
    // Independent of the limit test, which may have left this server full.
    await rows(limited.db, 'delete from webhook');
    const { secret: first, webhook } = await create({ url: 'https://93.184.215.14/no-overlap' }, limited.server);
    const { secret, webhook: rotated } = ok(await limited.server.gql<{ rotateWebhookSecret: { secret: string; webhook: WebhookOut } }>(ROTATE(webhook.id))).rotateWebhookSecret;
    expect(secret).not.toBe(first);
    expect(rotated.previousSecretExpiresAt).toBeNull();
    const [row] = await rows<{ secret: string; previous_secret: string | null; previous_secret_expires_at: Date | null }>(
      limited.db,
      'select secret, previous_secret, previous_secret_expires_at from webhook where id = $1',
      [webhook.id],
    );
    expect(row).toEqual({ secret, previous_secret: null, previous_secret_expires_at: null });
  });

  it('is NOT_FOUND for an unknown webhook', async () => {
    const id = randomUUID();
    expect(refusal(await server.gql(ROTATE(id))).extensions).toMatchObject({ code: 'NOT_FOUND', id });
  });
});

describe('deleteWebhook', () => {
  it('deletes the webhook and its deliveries, returns the id, and is NOT_FOUND the second time', async () => {
    const { webhook } = await create({ url: 'https://93.184.215.14/doomed' });
    const { eventId } = await newEvent();
    await insertDelivery(webhook.id, eventId, { status: 'PENDING' });
    await insertDelivery(webhook.id, eventId, { status: 'FAILED', redelivery: true });
    expect(ok(await server.gql<{ deleteWebhook: string }>(`mutation { deleteWebhook(id: "${webhook.id.toUpperCase()}") }`)).deleteWebhook).toBe(webhook.id);
    expect(ok(await server.gql<{ webhook: null }>(`{ webhook(id: "${webhook.id}") { id } }`)).webhook).toBeNull();
    const n = await count(db, 'select count(*)::int as n from webhook_delivery where webhook_id = $1', [webhook.id]);
    expect(n).toBe(0);
    expect(refusal(await server.gql(`mutation { deleteWebhook(id: "${webhook.id}") }`)).extensions).toMatchObject({ code: 'NOT_FOUND', id: webhook.id });
    expect(refusal(await server.gql('mutation { deleteWebhook(id: "not-an-id") }')).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'id' });
  });
});

describe('redeliverWebhookEvent', () => {
  const REDELIVER = `mutation($webhookId: ID!, $eventId: ID!) { redeliverWebhookEvent(webhookId: $webhookId, eventId: $eventId) { ${DELIVERY} event { id kind taskId } } }`;

  it('queues a PENDING redelivery of the event, due now, and lists it', async () => {
    const { webhook } = await create({ url: 'https://93.184.215.14/again' });
    const { taskId, eventId } = await newEvent();
    await insertDelivery(webhook.id, eventId, { status: 'DELIVERED' });
    const before = Date.now();
    const delivery = ok(await server.gql<{ redeliverWebhookEvent: DeliveryOut }>(REDELIVER, { webhookId: webhook.id, eventId })).redeliverWebhookEvent;
    expect(delivery).toMatchObject({ webhookId: webhook.id, eventId, redelivery: true, status: 'PENDING', attempts: 0, event: { id: eventId, kind: 'CREATED', taskId } });
    expect(Date.parse(delivery.nextAttemptAt!)).toBeGreaterThanOrEqual(before - 5);
    const [row] = await rows<{ status: string; redelivery: boolean; event_id: string; next_attempt_at: Date; retry_started_at: Date }>(
      db,
      'select status, redelivery, event_id::text, next_attempt_at, retry_started_at from webhook_delivery where id = $1',
      [delivery.id],
    );
    expect(row).toMatchObject({ status: 'PENDING', redelivery: true, event_id: eventId });
    expect(row!.retry_started_at.getTime()).toBe(row!.next_attempt_at.getTime());
    // A second one is a row of its own (redeliveries are not unique per event).
    const second = ok(await server.gql<{ redeliverWebhookEvent: DeliveryOut }>(REDELIVER, { webhookId: webhook.id, eventId })).redeliverWebhookEvent;
    expect(second.id).not.toBe(delivery.id);
    const listed = ok(await server.gql<{ webhookDeliveries: Connection<DeliveryOut> }>(`{ webhookDeliveries(webhookId: "${webhook.id}") { edges { node { id redelivery } } } }`)).webhookDeliveries;
    expect(listed.edges.map((e) => e.node.id).slice(0, 2)).toEqual([second.id, delivery.id]);
  });

  it('is NOT_FOUND for an unknown webhook or event, and BAD_USER_INPUT for an id that is not one', async () => {
    const { webhook } = await create({ url: 'https://93.184.215.14/missing' });
    const { eventId } = await newEvent();
    const unknownWebhook = randomUUID();
    expect(refusal(await server.gql(REDELIVER, { webhookId: unknownWebhook, eventId })).extensions).toMatchObject({ code: 'NOT_FOUND', id: unknownWebhook });
    for (const missing of ['999999999', '9999999999999999999']) {
      expect(refusal(await server.gql(REDELIVER, { webhookId: webhook.id, eventId: missing })).extensions, missing).toMatchObject({ code: 'NOT_FOUND', id: missing, field: 'eventId' });
    }
    expect(refusal(await server.gql(REDELIVER, { webhookId: webhook.id, eventId: 'abc' })).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'eventId' });
    expect(refusal(await server.gql(REDELIVER, { webhookId: 'abc', eventId })).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'webhookId' });
    const n = await count(db, 'select count(*)::int as n from webhook_delivery where webhook_id = $1', [webhook.id]);
    expect(n).toBe(0);
  });
});

describe('listings', () => {
  it('pages webhooks oldest first with cursors, and counts them only when asked', async () => {
    const mine: string[] = [];
    for (let i = 0; i < 5; i++) mine.push((await create({ url: `https://93.184.215.14/page-${i}` })).webhook.id);
    const seen: WebhookOut[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const args: string = after ? `first: 2, after: "${after}"` : 'first: 2';
      const page: Connection<WebhookOut> = ok(
        await server.gql<{ webhooks: Connection<WebhookOut> }>(`{ webhooks(${args}) { edges { cursor node { ${WEBHOOK} } } pageInfo { hasNextPage hasPreviousPage endCursor } totalCount } }`),
      ).webhooks;
      expect(page.pageInfo.hasPreviousPage).toBe(after !== null);
      seen.push(...page.edges.map((e) => e.node));
      pages++;
      if (!page.pageInfo.hasNextPage) {
        expect(page.totalCount).toBe(seen.length);
        break;
      }
      expect(page.edges).toHaveLength(2);
      expect(page.pageInfo.endCursor).toBe(page.edges[1]!.cursor);
      after = page.pageInfo.endCursor;
    }
    expect(pages).toBeGreaterThan(2);
    expect(new Set(seen.map((w) => w.id)).size).toBe(seen.length);
    const order = seen.map((w) => [w.createdAt, w.id].join(' '));
    expect(order).toEqual([...order].sort());
    expect(seen.map((w) => w.id).filter((id) => mine.includes(id))).toEqual(mine);

    // Without totalCount, one statement; with it, two.
    await server.gql('{ webhooks(first: 3) { nodes { id } } }', undefined, { 'x-request-id': 'wh-list-plain' });
    expect((await server.report('wh-list-plain')).sqlStatements).toBe(1);
    await server.gql('{ webhooks(first: 3) { nodes { id } totalCount } }', undefined, { 'x-request-id': 'wh-list-counted' });
    expect((await server.report('wh-list-counted')).sqlStatements).toBe(2);

    expect(refusal(await server.gql('{ webhooks(after: "garbage") { nodes { id } } }')).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
    expect(refusal(await server.gql('{ webhooks(first: 101) { nodes { id } } }')).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'first' });
    expect(ok(await server.gql<{ webhooks: Connection<WebhookOut> }>('{ webhooks(first: 0) { edges { cursor } pageInfo { hasNextPage } } }')).webhooks.edges).toEqual([]);
  });

  it('pages a webhook\'s deliveries newest first, filters by status, and loads their events in one batch', async () => {
    const { webhook } = await create({ url: 'https://93.184.215.14/history' });
    const { webhook: other } = await create({ url: 'https://93.184.215.14/other-history' });
    const events = [await newEvent(), await newEvent(), await newEvent(), await newEvent(), await newEvent()];
    const statuses = ['DELIVERED', 'DELIVERED', 'FAILED', 'PENDING', 'DELIVERED'];
    const ids: string[] = [];
    for (const [i, e] of events.entries()) {
      ids.push(await insertDelivery(webhook.id, e.eventId, { status: statuses[i]!, createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString() }));
    }
    // Two rows in the same millisecond: the id breaks the tie.
    const tied = [await insertDelivery(webhook.id, events[0]!.eventId, { status: 'PENDING', redelivery: true, createdAt: '2026-01-01T00:00:10.000Z' })];
    tied.push(await insertDelivery(webhook.id, events[1]!.eventId, { status: 'PENDING', redelivery: true, createdAt: '2026-01-01T00:00:10.000Z' }));
    await insertDelivery(other.id, events[0]!.eventId, { status: 'DELIVERED' });
    const newestFirst = [...tied.sort().reverse(), ...[...ids].reverse()];

    const QUERY = (args: string) => `{ webhookDeliveries(webhookId: "${webhook.id}", ${args}) { edges { cursor node { ${DELIVERY} event { id taskId } } } pageInfo { hasNextPage hasPreviousPage endCursor } totalCount } }`;
    const seen: DeliveryOut[] = [];
    let after: string | null = null;
    for (;;) {
      const page: Connection<DeliveryOut> = ok(await server.gql<{ webhookDeliveries: Connection<DeliveryOut> }>(QUERY(after ? `first: 3, after: "${after}"` : 'first: 3'))).webhookDeliveries;
      expect(page.totalCount).toBe(7);
      seen.push(...page.edges.map((e) => e.node));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(seen.map((d) => d.id)).toEqual(newestFirst);
    for (const d of seen) {
      expect(d.webhookId).toBe(webhook.id);
      expect(d.event).toEqual({ id: d.eventId, taskId: events.find((e) => e.eventId === d.eventId)!.taskId });
    }

    const delivered = ok(await server.gql<{ webhookDeliveries: Connection<DeliveryOut> }>(QUERY('status: DELIVERED'))).webhookDeliveries;
    expect(delivered.edges.map((e) => e.node.id)).toEqual([ids[4], ids[1], ids[0]]);
    expect(delivered.totalCount).toBe(3);
    const failedPage = ok(await server.gql<{ webhookDeliveries: Connection<DeliveryOut> }>(QUERY('status: FAILED'))).webhookDeliveries;
    expect(failedPage.edges.map((e) => e.node)).toMatchObject([{ id: ids[2], status: 'FAILED', attempts: 3 }]);

    // The webhook's existence, the page, and every row's event in one statement: three in all, without totalCount.
    await server.gql(`{ webhookDeliveries(webhookId: "${webhook.id}") { nodes { id event { kind } } } }`, undefined, { 'x-request-id': 'wh-deliveries-batched' });
    expect((await server.report('wh-deliveries-batched')).sqlStatements).toBe(3);

    const unknown = randomUUID();
    expect(refusal(await server.gql(`{ webhookDeliveries(webhookId: "${unknown}") { nodes { id } } }`)).extensions).toMatchObject({ code: 'NOT_FOUND', id: unknown });
    expect(refusal(await server.gql('{ webhookDeliveries(webhookId: "x") { nodes { id } } }')).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'webhookId' });
    expect(refusal(await server.gql(`{ webhookDeliveries(webhookId: "${webhook.id}", after: "bad") { nodes { id } } }`)).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
  });

  it('answers webhook(id) with null when absent, and BAD_USER_INPUT for an id that is not a UUID', async () => {
    expect(ok(await server.gql<{ webhook: null }>(`{ webhook(id: "${randomUUID()}") { id } }`)).webhook).toBeNull();
    expect(refusal(await server.gql('{ webhook(id: "7") { id } }')).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'id' });
  });
});

describe('the write scope, with authentication on', () => {
  const token = (scope: string) =>
    new SignJWT({ sub: 'integrator', scope }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(AUTH_SECRET));

  it('refuses the webhook queries and mutations to a token without tasks:write, and allows them with it', async () => {
    const reader = { authorization: `Bearer ${await token('tasks:read')}` };
    const writer = { authorization: `Bearer ${await token('tasks:read tasks:write')}` };
    const made = ok(await authed.server.gql<{ createWebhook: { webhook: { id: string } } }>(CREATE, { input: { url: 'https://93.184.215.14/scoped' } }, writer)).createWebhook.webhook;

    const reads = [
      '{ webhooks { nodes { id url } } }',
      `{ webhook(id: "${made.id}") { id url } }`,
      `{ webhookDeliveries(webhookId: "${made.id}") { nodes { id } } }`,
    ];
    for (const query of reads) {
      const res = await authed.server.gql(query, undefined, reader);
      expect(res.status, query).toBe(403);
      expect(refusal(res).extensions, query).toMatchObject({ code: 'FORBIDDEN', scope: 'tasks:write' });
      expect(refusal(res).message).toMatch(/needs a token with the tasks:write scope/);
      expect(JSON.stringify(res.body)).not.toContain('93.184.215.14');
    }
    const mutation = await authed.server.gql(`mutation { deleteWebhook(id: "${made.id}") }`, undefined, reader);
    expect(mutation.status).toBe(403);
    expect(refusal(mutation).extensions).toMatchObject({ code: 'FORBIDDEN', scope: 'tasks:write' });
    // A reader still reads tasks.
    expect((await authed.server.gql('{ tasks { nodes { id } } }', undefined, reader)).body.errors).toBeUndefined();

    for (const query of reads) expect((await authed.server.gql(query, undefined, writer)).body.errors, query).toBeUndefined();
    expect(ok(await authed.server.gql<{ webhook: { url: string } }>(`{ webhook(id: "${made.id}") { url } }`, undefined, writer)).webhook.url).toBe('https://93.184.215.14/scoped');
    const n = await count(authed.db, 'select count(*)::int as n from webhook');
    expect(n).toBe(1);
  });
});
