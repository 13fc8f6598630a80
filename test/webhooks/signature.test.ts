/**
 * Webhook signatures checked the way a receiver would, with node:crypto directly (not the server's own signing
 * code): HMAC-SHA256 over `<timestamp>.<body>`, a timing-safe compare, a timestamp tolerance, and the second
 * signature of a rotation's overlap (docs/webhooks.md, "Verifying a request").
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';
import { startReceiver, type ReceivedRequest, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import { insertWebhook } from '../helpers/webhooks.js';
import { ROOT } from '../helpers/child.js';

// A short lease: the worker re-reads its webhooks (and so their secrets) every third of it.
const { db, server } = useServer('webhook_signature', { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_LEASE_MS: '1500' });

const receivers: WebhookReceiver[] = [];
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
});

/** The receiver's check, written from the README's description of the scheme. */
function verify(secret: string, headers: IncomingHttpHeaders, rawBody: string, toleranceSeconds = 300, now = Date.now()): boolean {
  const timestamp = String(headers['x-webhook-timestamp'] ?? '');
  const header = String(headers['x-webhook-signature'] ?? '');
  if (!/^\d+$/.test(timestamp) || Math.abs(now / 1000 - Number(timestamp)) > toleranceSeconds) return false;
  const expected = createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${timestamp}.${rawBody}`, 'utf8').digest();
  return header
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.startsWith('v1='))
    .some((part) => {
      const given = Buffer.from(part.slice(3), 'hex');
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
}

function signatures(r: ReceivedRequest): string[] {
  return String(r.headers['x-webhook-signature']).split(', ');
}

async function createTask(title: string): Promise<string> {
  const res = await server.gql<{ createTask: { id: string } }>('mutation($t: String!) { createTask(input: { title: $t }) { id } }', { t: title });
  expect(res.body.errors).toBeUndefined();
  return res.body.data!.createTask.id;
}

/** Makes events until one arrives whose request satisfies `ok` (the worker picks a changed row up on its next renewal). */
async function deliveryWhere(receiver: WebhookReceiver, ok: (r: ReceivedRequest) => boolean, what: string): Promise<ReceivedRequest> {
  const deadline = Date.now() + 30_000;
  for (let i = 0; Date.now() < deadline; i++) {
    const taskId = await createTask(`${what} ${i}`);
    await receiver.waitFor((rs) => rs.some((r) => r.json?.taskId === taskId), `the event of ${taskId}`);
    const got = receiver.requests.find((r) => r.json?.taskId === taskId)!;
    if (ok(got)) return got;
  }
  throw new Error(`no delivery where ${what} within 30 s`);
}

describe('webhook signatures', () => {
  it('signs timestamp and body with the secret; a changed body, timestamp or secret fails the check', async () => {
    const receiver = await startReceiver();
    receivers.push(receiver);
    const secret = 'whsec_test-secret-one';
    await insertWebhook(db.url, { url: receiver.url, secret });
    await createTask('signed');
    await receiver.waitFor((rs) => rs.length >= 1, 'a delivery');
    const r = receiver.requests[0]!;
    expect(signatures(r)).toHaveLength(1);
    expect(verify(secret, r.headers, r.body)).toBe(true);
    expect(verify('whsec_another-secret', r.headers, r.body)).toBe(false);
    expect(verify(secret, r.headers, r.body.replace('signed', 'signeD'))).toBe(false);
    expect(verify(secret, { ...r.headers, 'x-webhook-timestamp': String(Number(r.headers['x-webhook-timestamp']) + 1) }, r.body)).toBe(false);
    // Too old (a replay): outside the tolerance, even with a good signature.
    expect(verify(secret, r.headers, r.body, 300, Date.now() + 600_000)).toBe(false);
  });

  it("passes the documentation's verification snippet, the same in the README and docs/webhooks.md", async () => {
    // The first js block after the heading, run as receivers would copy it.
    const snippet = (file: string, heading: string) => {
      const text = readFileSync(path.join(ROOT, file), 'utf8');
      const at = text.indexOf(`\n${heading}\n`);
      const match = at < 0 ? null : /```js\n([\s\S]*?)```/.exec(text.slice(at));
      if (!match) throw new Error(`no js block after "${heading}" in ${file}`);
      return match[1]!;
    };
    const code = snippet('docs/webhooks.md', '## Verifying a request');
    expect(snippet('README.md', '## Webhooks')).toBe(code);
    const dir = mkdtempSync(path.join(tmpdir(), 'webhook-snippet-'));
    try {
      writeFileSync(path.join(dir, 'verify.mjs'), code);
      type Verify = (secret: string, headers: IncomingHttpHeaders, rawBody: string | Buffer, toleranceSeconds?: number) => boolean;
      const { verifyWebhook } = (await import(pathToFileURL(path.join(dir, 'verify.mjs')).href)) as { verifyWebhook: Verify };
      const receiver = await startReceiver();
      receivers.push(receiver);
      const secret = 'whsec_documented';
      await insertWebhook(db.url, { url: receiver.url, secret });
      await createTask('checked by the documented snippet');
      await receiver.waitFor((rs) => rs.length >= 1, 'a delivery');
      const r = receiver.requests[0]!;
      expect(verifyWebhook(secret, r.headers, r.body)).toBe(true);
      expect(verifyWebhook(secret, r.headers, Buffer.from(r.body))).toBe(true);
      expect(verifyWebhook('whsec_other', r.headers, r.body)).toBe(false);
      expect(verifyWebhook(secret, r.headers, `${r.body} `)).toBe(false);
      expect(verifyWebhook(secret, { ...r.headers, 'x-webhook-timestamp': String(Math.floor(Date.now() / 1000) - 3600) }, r.body)).toBe(false);
      // Two signatures (a rotation): either secret passes.
      const ts = String(r.headers['x-webhook-timestamp']);
      const two = `v1=${createHmac('sha256', 'whsec_new').update(`${ts}.${r.body}`).digest('hex')}, ${String(r.headers['x-webhook-signature'])}`;
      expect(verifyWebhook(secret, { ...r.headers, 'x-webhook-signature': two }, r.body)).toBe(true);
      expect(verifyWebhook('whsec_new', { ...r.headers, 'x-webhook-signature': two }, r.body)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('signs with both secrets during a rotation overlap, the new one first, then with the new one alone', async () => {
    const receiver = await startReceiver();
    receivers.push(receiver);
    const oldSecret = 'whsec_before-rotation';
    const newSecret = 'whsec_after-rotation';
    const { id } = await insertWebhook(db.url, { url: receiver.url, secret: oldSecret });
    const c = await db.client();
    // A rotation, as rotateWebhookSecret writes it: the previous secret signs too until the overlap ends.
    await c.query(`update webhook set previous_secret = secret, secret = $2, previous_secret_expires_at = now() + interval '1 hour' where id = $1`, [id, newSecret]);
    const during = await deliveryWhere(receiver, (r) => signatures(r).length === 2, 'two signatures');
    expect(verify(newSecret, during.headers, during.body)).toBe(true);
    expect(verify(oldSecret, during.headers, during.body)).toBe(true);
    const [first, second] = signatures(during);
    const ts = String(during.headers['x-webhook-timestamp']);
    expect(first).toBe(`v1=${createHmac('sha256', newSecret).update(`${ts}.${during.body}`).digest('hex')}`);
    expect(second).toBe(`v1=${createHmac('sha256', oldSecret).update(`${ts}.${during.body}`).digest('hex')}`);

    // The overlap ends: only the new secret signs.
    await c.query(`update webhook set previous_secret_expires_at = now() - interval '1 second' where id = $1`, [id]);
    const after = await deliveryWhere(receiver, (r) => signatures(r).length === 1, 'one signature');
    expect(verify(newSecret, after.headers, after.body)).toBe(true);
    expect(verify(oldSecret, after.headers, after.body)).toBe(false);
    await c.end();
  });
});
