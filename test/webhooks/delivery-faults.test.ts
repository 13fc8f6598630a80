/**
 * Webhook delivery when things go wrong (docs/webhooks.md): the retry period running out (the webhook disabled,
 * then re-enabled and resuming with the same event), a redelivery giving up, redirects, the URL policy at delivery
 * (a server without WEBHOOK_ALLOW_PRIVATE), and a graceful stop with a delivery in flight.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startServer, useServer, waitFor, type TestServer } from '../helpers/server.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import { insertRedelivery, insertWebhook, readDeliveries, readWebhook, reenableWebhook, type InsertWebhookOptions } from '../helpers/webhooks.js';

const RETRY_FOR_MS = 1500;
const { db, server } = useServer('webhook_faults', {
  WEBHOOK_ALLOW_PRIVATE: 'true',
  WEBHOOK_RETRY_MIN_MS: '20',
  WEBHOOK_RETRY_MAX_MS: '200',
  WEBHOOK_RETRY_FOR_MS: String(RETRY_FOR_MS),
  WEBHOOK_TIMEOUT_MS: '3000',
});

const receivers: WebhookReceiver[] = [];
const servers: Server[] = [];
const hooks: string[] = [];

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail') {
    for (const l of server.logs) if (String(l.msg).includes('webhook') || l.level === 'warn' || l.level === 'error') console.log(JSON.stringify(l).slice(0, 600));
  }
  const c = await db.client();
  await c.query('delete from webhook where id = any($1::uuid[])', [hooks.splice(0)]);
  await c.end();
  await Promise.all(receivers.splice(0).map((r) => r.close()));
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function hookTo(target: string, options: Omit<InsertWebhookOptions, 'url'> & { url?: string } = {}): Promise<{ id: string; secret: string }> {
  const hook = await insertWebhook(target, { url: options.url ?? '', ...options });
  hooks.push(hook.id);
  return hook;
}

async function receiver(): Promise<WebhookReceiver> {
  const r = await startReceiver();
  receivers.push(r);
  return r;
}

async function createTask(on: Pick<TestServer, 'gql'>, title: string): Promise<string> {
  const res = await on.gql<{ createTask: { id: string } }>('mutation($t: String!) { createTask(input: { title: $t }) { id } }', { t: title });
  expect(res.body.errors).toBeUndefined();
  return res.body.data!.createTask.id;
}

async function metricValue(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
}

describe('webhook delivery faults', () => {
  it('disables a webhook whose event failed for the whole retry period; re-enabled, it resumes with that event', async () => {
    const r = await receiver();
    r.respond(() => 503);
    const { id } = await hookTo(db.url, { url: r.url });
    const first = await createTask(server, 'never accepted');
    const second = await createTask(server, 'waits behind it');
    const disabledBefore = await metricValue(server.url, 'webhook_disabled_total');

    const row = await waitFor(async () => {
      const w = await readWebhook(db.url, id);
      return w && !w.enabled ? w : undefined;
    }, 'the webhook disabled', 30_000);
    expect(row.disabled_at).toBeInstanceOf(Date);
    expect(row.disabled_reason).toMatch(/failing since \d{4}-\d\d-\d\dT/);
    expect(row.disabled_reason).toMatch(/\d+ attempts/);
    expect(row.disabled_reason).toMatch(/HTTP 503/);
    expect(row.lease_owner).toBeNull();
    const deliveries = await readDeliveries(db.url, id);
    expect(deliveries).toHaveLength(1); // the second event never got a delivery: it waits behind the first
    expect(deliveries[0]).toMatchObject({ status: 'FAILED', next_attempt_at: null, last_status_code: 503 });
    expect(deliveries[0]!.attempts).toBeGreaterThanOrEqual(3);
    expect(deliveries[0]!.last_attempt_at!.getTime() - deliveries[0]!.retry_started_at.getTime()).toBeGreaterThanOrEqual(RETRY_FOR_MS - 50);
    // Only attempts at the first event were made.
    expect(new Set(r.requests.map((q) => q.json?.taskId))).toEqual(new Set([first]));
    expect(server.logs.find((l) => l.msg === 'webhook disabled: its deliveries failed for the whole retry period' && l.webhookId === id)).toMatchObject({ level: 'info' });
    expect(await metricValue(server.url, 'webhook_disabled_total')).toBe(disabledBefore + 1);

    // The receiver recovers and the webhook is re-enabled as the API does it: the same event comes first.
    r.respond(() => 200);
    const before = r.requests.length;
    await reenableWebhook(db.url, id);
    await r.waitFor((rs) => rs.slice(before).filter((q) => q.status === 200).length >= 2, 'both events after re-enabling');
    expect(r.requests.slice(before).map((q) => q.json?.taskId)).toEqual([first, second]);
    const after = await waitFor(async () => {
      const all = await readDeliveries(db.url, id);
      return all.length === 2 && all.every((d) => d.status === 'DELIVERED') ? all : undefined;
    }, 'both DELIVERED');
    expect(after[0]!.id).toBe(deliveries[0]!.id);
  });

  it('gives a redelivery up once its retry period ends, without disabling the webhook', async () => {
    const r = await receiver();
    const { id } = await hookTo(db.url, { url: r.url });
    await createTask(server, 'delivered, then redelivered into a wall');
    await r.waitFor((rs) => rs.length >= 1, 'the first delivery');
    const eventId = String(r.requests[0]!.headers['x-webhook-event']);
    r.respond(() => 500);
    const redeliveryId = await insertRedelivery(db.url, id, eventId);
    const failed = await waitFor(async () => (await readDeliveries(db.url, id)).find((d) => d.id === redeliveryId && d.status === 'FAILED'), 'the redelivery FAILED', 30_000);
    expect(failed).toMatchObject({ redelivery: true, last_status_code: 500, next_attempt_at: null });
    expect(failed.attempts).toBeGreaterThanOrEqual(2);
    expect((await readWebhook(db.url, id))?.enabled).toBe(true);
    // The feed goes on: a new event is still delivered.
    r.respond(() => 200);
    const next = await createTask(server, 'after the redelivery gave up');
    await r.waitFor((rs) => rs.some((q) => q.json?.taskId === next && q.status === 200), 'the next event');
  });

  it('does not follow a redirect: the attempt fails and the target sees nothing', async () => {
    const target = await receiver();
    const redirects: string[] = [];
    const redirector = createServer((req, res) => {
      redirects.push(String(req.headers['x-webhook-event']));
      req.resume();
      res.writeHead(302, { location: target.url }).end();
    });
    servers.push(redirector);
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
    const port = (redirector.address() as AddressInfo).port;
    const { id } = await hookTo(db.url, { url: `http://127.0.0.1:${port}/moved` });
    await createTask(server, 'redirected');
    const row = await waitFor(async () => (await readDeliveries(db.url, id)).find((d) => d.attempts >= 2), 'two failed attempts');
    expect(row).toMatchObject({ status: 'PENDING', last_status_code: 302 });
    expect(row.last_error).toMatch(/HTTP 302: redirects are not followed/);
    expect(redirects.length).toBeGreaterThanOrEqual(2);
    expect(target.requests).toEqual([]);
  });

  describe('on a server without WEBHOOK_ALLOW_PRIVATE', () => {
    let strictDb: TestDatabase | undefined;
    let strict: TestServer | undefined;
    afterAll(async () => {
      await strict?.stop();
      await strictDb?.drop();
    });

    it('refuses loopback addresses at delivery, by name and as IP literals, and says why', async () => {
      strictDb = await createTestDatabase('webhook_ssrf');
      strict = await startServer(strictDb.url, { WEBHOOK_RETRY_MIN_MS: '20', WEBHOOK_RETRY_MAX_MS: '200' });
      const r = await receiver();
      // Inserted directly: the API would refuse these URLs when saved; the worker must refuse them too.
      const byName = await insertWebhook(strictDb.url, { url: `http://localhost:${r.port}/hook` });
      const byIp = await insertWebhook(strictDb.url, { url: `http://127.0.0.1:${r.port}/hook` });
      const mapped = await insertWebhook(strictDb.url, { url: `https://[::ffff:127.0.0.1]:${r.port}/hook` });
      await createTask(strict, 'must not leave the server');
      const refused = async (id: string) =>
        waitFor(async () => (await readDeliveries(strictDb!.url, id)).find((d) => d.attempts >= 2), `refused attempts of ${id}`, 30_000);
      const [name, ip, v6] = await Promise.all([refused(byName.id), refused(byIp.id), refused(mapped.id)]);
      expect(name.last_error).toMatch(/^refused: localhost resolves to (127\.0\.0\.1|::1) is a loopback address \(set WEBHOOK_ALLOW_PRIVATE=true/);
      expect(ip.last_error).toMatch(/^refused: 127\.0\.0\.1 is a loopback address/);
      expect(v6.last_error).toMatch(/^refused: .*loopback address/);
      for (const d of [name, ip, v6]) expect(d).toMatchObject({ status: 'PENDING', last_status_code: null });
      expect(await metricValue(strict.url, 'webhook_deliveries_total{outcome="refused"}')).toBeGreaterThanOrEqual(6);
      expect(strict.logs.some((l) => l.msg === 'webhook delivery attempt failed' && l.webhookId === byName.id && String(l.error).startsWith('refused:'))).toBe(true);
      expect(r.requests).toEqual([]);
    });

    it('deletes finished delivery records past the retention when a worker starts, and keeps pending ones', async () => {
      const c = await strictDb!.client();
      const hook = await insertWebhook(c, { url: 'https://example.invalid/hook' });
      const old = `now() - interval '8 days'`; // the default retention is 7 days
      const { rows } = await c.query<{ id: string; status: string }>(
        `insert into webhook_delivery (id, webhook_id, event_id, redelivery, status, attempts, retry_started_at, created_at, delivered_at)
         values (gen_random_uuid(), $1, 1, true, 'DELIVERED', 1, ${old}, ${old}, ${old}), (gen_random_uuid(), $1, 2, true, 'FAILED', 3, ${old}, ${old}, null),
                (gen_random_uuid(), $1, 3, true, 'PENDING', 0, ${old}, ${old}, null), (gen_random_uuid(), $1, 4, true, 'DELIVERED', 1, now(), now(), now())
         returning id, status::text as status`,
        [hook.id],
      );
      await c.query('update webhook set enabled = false where id = $1', [hook.id]);
      // A new instance: its worker's first round runs the retention.
      await strict!.stop();
      strict = await startServer(strictDb!.url);
      const left = await waitFor(async () => {
        const res = await c.query<{ id: string }>('select id from webhook_delivery where webhook_id = $1 order by event_id', [hook.id]);
        return res.rows.length === 2 ? res.rows.map((x) => x.id) : undefined;
      }, 'the old finished records deleted');
      expect(left).toEqual([rows[2]!.id, rows[3]!.id]);
      expect(strict.logs.find((l) => l.msg === 'old webhook delivery records deleted')).toMatchObject({ deleted: 2 });
    });
  });

  it('keeps a short lease (WEBHOOK_LEASE_MS=1000) renewed: one owner for several lease lengths, never lost', async () => {
    const leaseDb = await createTestDatabase('webhook_short_lease');
    const short = await startServer(leaseDb.url, { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_LEASE_MS: '1000' });
    try {
      const r = await receiver();
      const hook = await insertWebhook(leaseDb.url, { url: r.url });
      await waitFor(() => short.logs.find((l) => l.msg === 'webhook lease taken: delivering it from this instance'), 'the lease taken');
      const owner = (await readWebhook(leaseDb.url, hook.id))?.lease_owner;
      const started = Date.now();
      // Deliveries keep flowing for four lease lengths; each one waits for the one before.
      for (let i = 0; Date.now() - started < 4000; i++) {
        await createTask(short, `short lease ${i}`);
        await r.waitFor((rs) => rs.length > i, `delivery ${i}`);
      }
      expect(short.logs.filter((l) => String(l.msg).startsWith('webhook lease lost'))).toEqual([]);
      expect(short.logs.filter((l) => l.msg === 'webhook lease taken: delivering it from this instance')).toHaveLength(1);
      expect((await readWebhook(leaseDb.url, hook.id))?.lease_owner).toBe(owner);
    } finally {
      await short.stop();
      await leaseDb.drop();
    }
  });

  // Last: it stops the file's server.
  it('stops gracefully: waits for the delivery in flight, records it, then releases the lease', async () => {
    const r = await receiver();
    r.respond(() => ({ status: 200, delayMs: 1500 }));
    const { id } = await hookTo(db.url, { url: r.url });
    await createTask(server, 'in flight at shutdown');
    await r.waitFor((rs) => rs.length >= 1, 'the request in flight');
    const leased = await readWebhook(db.url, id);
    expect(leased?.lease_live).toBe(true);
    const started = Date.now();
    const result = await server.app.stop();
    expect(result.clean).toBe(true);
    // The answer came 1.5 s after the request: the stop waited for it.
    expect(Date.now() - r.requests[0]!.receivedAt).toBeGreaterThanOrEqual(1400);
    expect(Date.now() - started).toBeLessThan(10_000);
    const [delivery] = await readDeliveries(db.url, id);
    expect(delivery).toMatchObject({ status: 'DELIVERED', attempts: 1, last_status_code: 200 });
    const released = await readWebhook(db.url, id);
    expect(released?.lease_live).toBe(false);
    expect(released?.lease_owner).toBe(leased?.lease_owner);
    expect(released?.position_id).toBe(delivery!.event_id);
    const messages = server.logs.map((l) => l.msg);
    expect(messages).toContain('webhook delivery worker stopping: waiting for deliveries in flight');
    expect(messages.indexOf('webhook delivery worker stopped; leases released')).toBeLessThan(messages.indexOf('database pool closed'));
  });
});
