/**
 * Webhook delivery end to end (docs/webhooks.md): a real server with its worker, real loopback receivers, real
 * PostgreSQL. Webhook rows are inserted directly (test/helpers/webhooks.ts); every wait is for an arrival, a row
 * or a metric, never a fixed sleep.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { useServer, waitFor } from '../helpers/server.js';
import { feedCaughtUp } from '../helpers/feed.js';
import { startReceiver, type ReceivedRequest, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import { insertWebhook, readDeliveries, readWebhook, type InsertWebhookOptions } from '../helpers/webhooks.js';
import { encodeCursor } from '../../src/pagination.js';

const { db, server } = useServer('webhook_delivery', {
  WEBHOOK_ALLOW_PRIVATE: 'true',
  WEBHOOK_RETRY_MIN_MS: '20',
  WEBHOOK_RETRY_MAX_MS: '200',
  WEBHOOK_TIMEOUT_MS: '500',
  LOG_LEVEL: 'debug',
});

const receivers: WebhookReceiver[] = [];
const hooks: string[] = [];

afterEach(async (ctx) => {
  // A failure shows the worker's side: its webhook log lines and every warning.
  if (ctx.task.result?.state === 'fail') {
    for (const l of server.logs) if (String(l.msg).includes('webhook') || l.level === 'warn' || l.level === 'error') console.log(JSON.stringify(l).slice(0, 600));
  }
  // Deleting a webhook ends its delivery loop (its lease is gone with it).
  const c = await db.client();
  await c.query('delete from webhook where id = any($1::uuid[])', [hooks.splice(0)]);
  await c.end();
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

/** A receiver and a webhook to it; both cleaned up after the test. */
async function hookTo(options: Omit<InsertWebhookOptions, 'url'> = {}, receiver?: WebhookReceiver): Promise<{ receiver: WebhookReceiver; id: string; secret: string }> {
  const r = receiver ?? (await startReceiver());
  if (!receiver) receivers.push(r);
  const { id, secret } = await insertWebhook(db.url, { url: r.url, ...options });
  hooks.push(id);
  return { receiver: r, id, secret };
}

async function gql<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>): Promise<T> {
  const res = await server.gql<T>(query, variables);
  expect(res.body.errors).toBeUndefined();
  return res.body.data!;
}

async function createTask(input: Record<string, unknown> = {}): Promise<string> {
  const data = await gql<{ createTask: { id: string } }>('mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }', {
    i: { title: 'hooked', ...input },
  });
  return data.createTask.id;
}

/** The feed's events (id, kind, taskId) after the webhook's start, in feed order, for the tasks in `taskIds`. */
async function feedEvents(taskIds: ReadonlySet<string>): Promise<Array<{ id: string; kind: string; taskId: string; cursor: string }>> {
  await feedCaughtUp(db);
  const c = await db.client();
  const { rows } = await c.query<{ id: string; kind: string; task_id: string; xid: string }>(
    // Ordered by the columns (not the text aliases of the same names, which would sort "10" before "9").
    `select e.id::text as id, e.kind::text as kind, e.task_id, e.xid::text as xid from task_event e where e.task_id = any($1::uuid[]) order by e.xid, e.id`,
    [[...taskIds]],
  );
  await c.end();
  return rows.map((r) => ({ id: r.id, kind: r.kind, taskId: r.task_id, cursor: encodeCursor([r.xid, r.id]) }));
}

/** Event ids in order of first arrival (a redelivered duplicate counts once). */
function firstArrivals(requests: readonly ReceivedRequest[], status = 200): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const r of requests) {
    const id = String(r.headers['x-webhook-event']);
    if (r.status !== status || seen.has(id)) continue;
    seen.add(id);
    out.push(id);
  }
  return out;
}

describe('webhook delivery', () => {
  it('POSTs each event once, in feed order, with the payload and headers of the contract', async () => {
    const { receiver, id } = await hookTo();
    const taskId = await createTask({ assignee: 'ann', tags: ['a'] });
    await gql(`mutation { updateTask(id: "${taskId}", input: { title: "renamed", assignee: "bob" }) { id } }`);
    await gql(`mutation { startTask(id: "${taskId}") { id } }`);
    const expected = await feedEvents(new Set([taskId]));
    expect(expected.map((e) => e.kind)).toEqual(['CREATED', 'UPDATED', 'STATUS_CHANGED']);
    await receiver.waitFor((rs) => rs.length >= 3, 'three deliveries');

    expect(receiver.requests.map((r) => r.headers['x-webhook-event'])).toEqual(expected.map((e) => e.id));
    const [first] = receiver.requests;
    expect(first!.method).toBe('POST');
    expect(first!.path).toBe('/hook');
    expect(first!.headers['content-type']).toBe('application/json');
    expect(first!.headers['user-agent']).toBe('task-tracker-webhooks');
    expect(first!.headers['x-webhook-id']).toBe(id);
    expect(first!.headers['x-webhook-timestamp']).toMatch(/^\d{10}$/);
    expect(Math.abs(Number(first!.headers['x-webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
    expect(first!.headers['x-webhook-signature']).toMatch(/^v1=[0-9a-f]{64}$/);
    expect(first!.json).toEqual({
      id: expected[0]!.id,
      kind: 'CREATED',
      taskId,
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/) as string,
      actor: expect.any(String) as string,
      changes: expect.objectContaining({ title: 'hooked', assignee: 'ann' }) as object,
      cursor: expected[0]!.cursor,
    });
    expect(receiver.requests[1]!.json!.changes).toMatchObject({ title: { from: 'hooked', to: 'renamed' }, assignee: { from: 'ann', to: 'bob' } });

    // The cursor is the taskEvents cursor of the same event.
    const feed = await gql<{ taskEvents: { edges: Array<{ cursor: string; node: { id: string } }> } }>(
      `{ taskEvents(after: "${expected[0]!.cursor}", first: 1) { edges { cursor node { id } } } }`,
    );
    expect(feed.taskEvents.edges[0]?.node.id).toBe(expected[1]!.id);

    // Each delivery is DELIVERED with one attempt, its own delivery id, and the position is past the last one.
    const deliveries = await waitFor(async () => {
      const rows = await readDeliveries(db.url, id);
      return rows.length === 3 && rows.every((d) => d.status === 'DELIVERED') ? rows : undefined;
    }, 'three DELIVERED rows');
    expect(deliveries.map((d) => d.event_id)).toEqual(expected.map((e) => e.id));
    expect(deliveries.map((d) => d.id)).toEqual(receiver.requests.map((r) => r.headers['x-webhook-delivery']));
    for (const d of deliveries) {
      expect(d).toMatchObject({ attempts: 1, last_status_code: 200, last_error: null, next_attempt_at: null, redelivery: false });
      expect(d.delivered_at).toBeInstanceOf(Date);
      expect(d.last_latency_ms).toBeGreaterThanOrEqual(0);
    }
    const row = await readWebhook(db.url, id);
    expect(row?.position_id).toBe(expected[2]!.id);
    expect(row?.lease_live).toBe(true);
    expect(row?.lease_owner).toMatch(/^.+:\d+:[0-9a-f]{8}$/);
    expect(server.logs.some((l) => l.msg === 'webhook delivered' && l.requestId === deliveries[0]!.id && l.level === 'debug')).toBe(true);
  });

  it('keeps feed order under a burst of 500 events from concurrent clients', async () => {
    const { receiver } = await hookTo();
    const taskIds = new Set<string>();
    // 4 clients at once: each creates 25 tasks in batches of 5, then updates each of them 4 times (25 + 100 events).
    const client = async (n: number) => {
      const ids: string[] = [];
      for (let b = 0; b < 5; b++) {
        const inputs = Array.from({ length: 5 }, (_, i) => ({ title: `burst ${n}.${b}.${i}` }));
        const data = await gql<{ createTasks: Array<{ id: string }> }>('mutation($i: [CreateTaskInput!]!) { createTasks(inputs: $i) { id } }', { i: inputs });
        ids.push(...data.createTasks.map((t) => t.id));
      }
      for (const id of ids) taskIds.add(id);
      for (let round = 0; round < 4; round++) {
        await Promise.all(ids.map((id) => gql(`mutation { updateTask(id: "${id}", input: { title: "r${round}" }) { id } }`)));
      }
    };
    await Promise.all([0, 1, 2, 3].map(client));
    const expected = await feedEvents(taskIds);
    expect(expected).toHaveLength(500);
    await receiver.waitFor((rs) => rs.length >= 500, '500 deliveries', 120_000);
    expect(firstArrivals(receiver.requests)).toEqual(expected.map((e) => e.id));
    // Arrival order itself (not only first arrivals) is feed order: no event was sent before an earlier one.
    expect(receiver.requests.map((r) => r.headers['x-webhook-event'])).toEqual(expected.map((e) => e.id));
  });
});
