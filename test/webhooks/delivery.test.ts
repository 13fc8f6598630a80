/**
 * Webhook delivery end to end (docs/webhooks.md): a real server with its worker, real loopback receivers, real
 * PostgreSQL. Webhook rows are inserted directly (test/helpers/webhooks.ts); every wait is for an arrival, a row
 * or a metric, never a fixed sleep.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { useServer, waitFor } from '../helpers/server.js';
import { feedCaughtUp } from '../helpers/feed.js';
import { startReceiver, type ReceivedRequest, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import { insertRedelivery, insertWebhook, readDeliveries, readWebhook, type InsertWebhookOptions } from '../helpers/webhooks.js';
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

  it('retries while the receiver is down, then delivers everything in order, none skipped', async () => {
    const { receiver, id } = await hookTo();
    await receiver.pause();
    const taskIds = new Set<string>();
    for (let i = 0; i < 30; i++) taskIds.add(await createTask({ title: `while down ${i}` }));
    // The first event's delivery fails again and again (connection refused), and nothing after it is tried.
    const failing = await waitFor(async () => {
      const rows = await readDeliveries(db.url, id);
      return rows.length > 0 && rows[0]!.attempts >= 4 ? rows : undefined;
    }, 'four failed attempts while the receiver is down', 30_000);
    expect(failing).toHaveLength(1);
    expect(failing[0]).toMatchObject({ status: 'PENDING', last_status_code: null });
    expect(failing[0]!.last_error).toMatch(/ECONNREFUSED/);
    expect(failing[0]!.next_attempt_at).toBeInstanceOf(Date);
    const warned = server.logs.find((l) => l.msg === 'webhook delivery attempt failed' && l.requestId === failing[0]!.id);
    expect(warned).toMatchObject({ level: 'warn', webhookId: id, eventId: failing[0]!.event_id, statusCode: null, error: expect.stringMatching(/ECONNREFUSED/) as string });
    expect(warned!.attempt).toBeGreaterThanOrEqual(1);
    expect(typeof warned!.nextAttemptAt).toBe('string');

    await receiver.start();
    const expected = await feedEvents(taskIds);
    expect(expected).toHaveLength(30);
    await receiver.waitFor((rs) => firstArrivals(rs).length >= 30, 'all 30 events after the receiver is back');
    expect(firstArrivals(receiver.requests)).toEqual(expected.map((e) => e.id));
    const rows = await waitFor(async () => {
      const all = await readDeliveries(db.url, id);
      return all.length === 30 && all.every((d) => d.status === 'DELIVERED') ? all : undefined;
    }, 'every delivery DELIVERED');
    expect(rows[0]!.attempts).toBeGreaterThanOrEqual(5);
    expect(rows.slice(1).every((d) => d.attempts === 1)).toBe(true);
  });

  it('retries an event answered 500 until it gets 200, while the later events wait', async () => {
    const { receiver, id } = await hookTo();
    receiver.respond((_req, i) => (i < 3 ? 500 : 200));
    const first = await createTask({ title: 'answered 500 first' });
    const second = await createTask({ title: 'then this one' });
    const expected = await feedEvents(new Set([first, second]));
    await receiver.waitFor((rs) => rs.filter((r) => r.status === 200).length >= 2, 'both events delivered');
    const order = receiver.requests.map((r) => [r.headers['x-webhook-event'], r.status]);
    expect(order).toEqual([
      [expected[0]!.id, 500],
      [expected[0]!.id, 500],
      [expected[0]!.id, 500],
      [expected[0]!.id, 200],
      [expected[1]!.id, 200],
    ]);
    // Every attempt of one delivery carries the same delivery id.
    expect(new Set(receiver.requests.slice(0, 4).map((r) => r.headers['x-webhook-delivery'])).size).toBe(1);
    const rows = await waitFor(async () => {
      const all = await readDeliveries(db.url, id);
      return all.length === 2 && all.every((d) => d.status === 'DELIVERED') ? all : undefined;
    }, 'both DELIVERED');
    expect(rows[0]).toMatchObject({ attempts: 4, last_status_code: 200, last_error: null });
    const failures = server.logs.filter((l) => l.msg === 'webhook delivery attempt failed' && l.requestId === rows[0]!.id);
    expect(failures.map((l) => [l.attempt, l.statusCode])).toEqual([
      [1, 500],
      [2, 500],
      [3, 500],
    ]);
    expect(String(failures[0]!.error)).toMatch(/^HTTP 500/);
  });

  it('gives up an attempt past WEBHOOK_TIMEOUT_MS and delivers once the receiver answers in time', async () => {
    const { receiver, id } = await hookTo();
    receiver.respond((_req, i) => (i < 2 ? { status: 200, delayMs: 2000 } : 200));
    const taskId = await createTask({ title: 'slow receiver' });
    await receiver.waitFor((rs) => rs.length >= 3, 'a third, fast attempt');
    const rows = await waitFor(async () => {
      const all = await readDeliveries(db.url, id);
      return all[0]?.status === 'DELIVERED' ? all : undefined;
    }, 'the delivery DELIVERED');
    expect(rows[0]).toMatchObject({ attempts: 3, last_status_code: 200 });
    const failures = server.logs.filter((l) => l.msg === 'webhook delivery attempt failed' && l.requestId === rows[0]!.id);
    expect(failures).toHaveLength(2);
    for (const f of failures) {
      expect(f).toMatchObject({ outcome: 'timeout', statusCode: null });
      expect(String(f.error)).toMatch(/WEBHOOK_TIMEOUT_MS \(500 ms\)/);
    }
    // The timed-out attempts were cut at the timeout, not waited out.
    const [a, b] = receiver.requests;
    expect(b!.receivedAt - a!.receivedAt).toBeLessThan(1900);
    expect(receiver.requests.every((r) => r.json?.taskId === taskId)).toBe(true);
  });

  it("delivers a late-committing transaction's event in feed order, never skipping it", async () => {
    const { receiver } = await hookTo();
    const early = await createTask({ title: 'before the long transaction' });
    // The worker is live (it leases the webhook and has caught up) before the long transaction begins.
    await receiver.waitFor((rs) => rs.length >= 1, "the early task's event");
    const c = await db.client();
    await c.query('begin');
    // An event written by a transaction that began before the next ones and commits after them.
    const { rows } = await c.query<{ id: string }>(
      `insert into task_event (task_id, kind, actor, at, changes) values ($1, 'UPDATED', 'late writer', now(), '{"title": {"from": "a", "to": "b"}}') returning id::text as id`,
      [early],
    );
    const lateId = rows[0]!.id;
    const later = new Set<string>();
    for (let i = 0; i < 5; i++) later.add(await createTask({ title: `committed while the late one runs ${i}` }));
    // Their notifications woke the worker, which reads the feed at once: a worker that ignored the feed's horizon
    // would have sent (some of) them by now, and moved its position past the late event, skipping it for good.
    // The feed is held back behind the open transaction: none of the later events may have been sent yet.
    expect(receiver.requests.map((r) => r.json?.taskId).filter((t) => later.has(String(t)))).toEqual([]);
    await c.query('commit');
    const expected = await feedEvents(new Set([early, ...later]));
    expect(expected.map((e) => e.id)).toContain(lateId);
    expect(expected.findIndex((e) => e.id === lateId)).toBe(1); // after `early`'s CREATED, before the later ones
    await receiver.waitFor((rs) => firstArrivals(rs).length >= expected.length, 'every event including the late one');
    expect(firstArrivals(receiver.requests)).toEqual(expected.map((e) => e.id));
    expect(receiver.requests[1]!.json).toMatchObject({ id: lateId, actor: 'late writer', kind: 'UPDATED', taskId: early });
  });

  it('sends each webhook exactly the events its kinds and filter select', async () => {
    const c = await db.client();
    // Disabled while the events are made, so every event is matched against the tasks' final state.
    const make = (options: Omit<InsertWebhookOptions, 'url'>) => hookTo({ ...options, enabled: false });
    const byKind = await make({ kinds: ['STATUS_CHANGED'] });
    const t1 = await createTask({ title: 'T1' });
    const byTask = await make({ filter: { taskId: t1 } });
    const byAssignee = await make({ filter: { assignee: 'carol' } });
    const byTag = await make({ filter: { tagsAny: ['red', 'green'] } });
    const combined = await make({ kinds: ['UPDATED'], filter: { assignee: 'carol' } });
    // Positioned before T1's CREATED (byKind was made before it).
    const head = await c.query<{ xid: string; id: string }>('select position_xid::text as xid, position_id::text as id from webhook where id = $1', [byKind.id]);
    await c.query('update webhook set position_xid = $1::xid8, position_id = $2::bigint where id = any($3::uuid[])', [
      head.rows[0]!.xid,
      head.rows[0]!.id,
      [byTask.id, byAssignee.id, byTag.id, combined.id],
    ]);

    const t2 = await createTask({ title: 'T2', assignee: 'carol' });
    const t3 = await createTask({ title: 'T3', tags: ['red'] });
    const t4 = await createTask({ title: 'T4' });
    await gql(`mutation { updateTask(id: "${t4}", input: { assignee: "carol" }) { id } }`);
    await gql(`mutation { updateTask(id: "${t4}", input: { assignee: "dan" }) { id } }`);
    const t5 = await createTask({ title: 'T5', tags: ['red', 'blue'] });
    await gql(`mutation { updateTask(id: "${t5}", input: { tags: ["blue"] }) { id } }`);
    await gql(`mutation { startTask(id: "${t1}") { id } }`);
    await gql(`mutation { updateTask(id: "${t1}", input: { title: "T1 renamed" }) { id } }`);
    await gql(`mutation { startTask(id: "${t2}") { id } }`);
    await gql(`mutation { updateTask(id: "${t3}", input: { title: "T3 renamed" }) { id } }`);
    const events = await feedEvents(new Set([t1, t2, t3, t4, t5]));
    const ev = (task: string, nth = 0) => events.filter((e) => e.taskId === task)[nth]!.id;
    expect(events).toHaveLength(12);

    const expectations: Array<[string, { receiver: WebhookReceiver }, string[]]> = [
      ['kinds STATUS_CHANGED', byKind, [ev(t1, 1), ev(t2, 1)]],
      ['taskId T1', byTask, [ev(t1, 0), ev(t1, 1), ev(t1, 2)]],
      // T2 is carol's; T4's updates set and then clear carol (its CREATED does not: T4 is dan's now).
      ['assignee carol', byAssignee, [ev(t2, 0), ev(t4, 1), ev(t4, 2), ev(t2, 1)]],
      // T3 is red; T5's update clears red (its CREATED does not carry tags, and T5 is only blue now).
      ['tagsAny red, green', byTag, [ev(t3, 0), ev(t5, 1), ev(t3, 1)]],
      ['UPDATED and carol', combined, [ev(t4, 1), ev(t4, 2)]],
    ];
    await c.query('update webhook set enabled = true where id = any($1::uuid[])', [[byKind.id, byTask.id, byAssignee.id, byTag.id, combined.id]]);
    await c.end();
    for (const [what, hook, ids] of expectations) {
      const last = ids[ids.length - 1];
      // Delivery is in feed order, so once the last expected event arrived every earlier match has too.
      await hook.receiver.waitFor((rs) => rs.some((r) => r.headers['x-webhook-event'] === last), `the last event for ${what}`);
      expect(firstArrivals(hook.receiver.requests), what).toEqual(ids);
    }
  });

  it('sends a redelivery with a new delivery id and the same event id', async () => {
    const { receiver, id } = await hookTo();
    await createTask({ title: 'to be redelivered' });
    await receiver.waitFor((rs) => rs.length >= 1, 'the first delivery');
    const original = receiver.requests[0]!;
    const eventId = String(original.headers['x-webhook-event']);
    const redeliveryId = await insertRedelivery(db.url, id, eventId);
    await receiver.waitFor((rs) => rs.length >= 2, 'the redelivery');
    const again = receiver.requests[1]!;
    expect(again.headers['x-webhook-event']).toBe(eventId);
    expect(again.headers['x-webhook-delivery']).toBe(redeliveryId);
    expect(again.headers['x-webhook-delivery']).not.toBe(original.headers['x-webhook-delivery']);
    expect(again.body).toBe(original.body);
    const rows = await waitFor(async () => {
      const all = await readDeliveries(db.url, id);
      return all.find((d) => d.id === redeliveryId && d.status === 'DELIVERED');
    }, 'the redelivery DELIVERED');
    expect(rows).toMatchObject({ redelivery: true, attempts: 1, last_status_code: 200 });
    // The feed's own delivery of that event stays as it was.
    expect((await readDeliveries(db.url, id)).filter((d) => !d.redelivery)).toHaveLength(1);
  });

  it('reports deliveries, attempt latency and each webhook backlog in /metrics', async () => {
    const { receiver, id } = await hookTo();
    await createTask({ title: 'measured' });
    await receiver.waitFor((rs) => rs.length >= 1, 'a delivery');
    const metric = async (): Promise<string> => (await fetch(`${server.url}/metrics`)).text();
    const value = (text: string, series: string): number | undefined => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    let text = await waitFor(async () => {
      const t = await metric();
      return value(t, `webhook_backlog_events{webhook="${id}"}`) === 0 ? t : undefined;
    }, 'the backlog of a caught-up webhook at 0');
    expect(value(text, 'webhook_deliveries_total{outcome="delivered"}')).toBeGreaterThanOrEqual(1);
    for (const outcome of ['http_error', 'timeout', 'network_error', 'refused']) expect(value(text, `webhook_deliveries_total{outcome="${outcome}"}`)).toBeGreaterThanOrEqual(0);
    expect(value(text, 'webhook_attempt_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(value(text, `webhook_oldest_undelivered_age_seconds{webhook="${id}"}`)).toBe(0);
    expect(value(text, 'webhook_disabled_total')).toBeGreaterThanOrEqual(0);
    expect(value(text, 'webhook_leases')).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/# TYPE webhook_deliveries_total counter/);

    // A receiver that is down: the backlog and the oldest event's age grow.
    await receiver.pause();
    for (let i = 0; i < 3; i++) await createTask({ title: `backlog ${i}` });
    await feedCaughtUp(db);
    text = await waitFor(async () => {
      const t = await metric();
      return (value(t, `webhook_backlog_events{webhook="${id}"}`) ?? 0) >= 3 && (value(t, `webhook_oldest_undelivered_age_seconds{webhook="${id}"}`) ?? 0) > 0 ? t : undefined;
    }, 'a backlog of 3 with an age');
    expect(value(text, 'webhook_deliveries_total{outcome="network_error"}')).toBeGreaterThanOrEqual(1);
    await receiver.start();
    await receiver.waitFor((rs) => rs.length >= 4, 'the backlog delivered');
  });
});
