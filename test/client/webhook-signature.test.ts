/**
 * verifyWebhookSignature (the typed client's, Web Crypto) against signatures made independently with node:crypto,
 * and against the server's own signer: both secrets of a rotation, the timestamp tolerance, tampering, and headers
 * in the shapes receivers have them (fetch `Headers`, Node's `req.headers`).
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifyWebhookSignature, type WebhookHeaders } from '@task-tracker/client';
import { signatureHeader } from '../../src/webhooks/signature.js';

const NEW = 'whsec_new-secret';
const OLD = 'whsec_old-secret';
const BODY = JSON.stringify({ id: 'evt-1', kind: 'CREATED', task: { title: 'Grüße, 東京' } });
const NOW = new Date('2026-12-06T12:00:00Z');
const NOW_SECONDS = NOW.getTime() / 1000;

/** `v1=<hex>` of `<timestamp>.<body>` under `secret`, as the scheme says, with node:crypto. */
function v1(secret: string, timestamp: number | string, body: string | Buffer): string {
  return `v1=${createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${timestamp}.`).update(body).digest('hex')}`;
}

/** Node-style headers (lowercase names, as `req.headers` has them). */
function nodeHeaders(timestamp: number | string, signature: string): Record<string, string> {
  return { 'x-webhook-timestamp': String(timestamp), 'x-webhook-signature': signature, 'content-type': 'application/json' };
}

const verify = (headers: WebhookHeaders, options: { secret?: string | string[]; body?: string | Uint8Array; toleranceSeconds?: number; now?: Date } = {}) =>
  verifyWebhookSignature({ secret: options.secret ?? NEW, headers, body: options.body ?? BODY, now: options.now ?? NOW, toleranceSeconds: options.toleranceSeconds });

describe('verifyWebhookSignature', () => {
  it('accepts a request signed with the secret, given fetch Headers or Node headers, a text or a byte body', async () => {
    const signature = v1(NEW, NOW_SECONDS, BODY);
    expect(await verify(nodeHeaders(NOW_SECONDS, signature))).toBe(true);
    expect(await verify(new Headers({ 'X-Webhook-Timestamp': String(NOW_SECONDS), 'X-Webhook-Signature': signature }))).toBe(true);
    expect(await verify({ 'X-Webhook-Timestamp': String(NOW_SECONDS), 'X-WEBHOOK-SIGNATURE': signature })).toBe(true);
    expect(await verify(nodeHeaders(NOW_SECONDS, signature), { body: Buffer.from(BODY, 'utf8') })).toBe(true);
    expect(await verify(nodeHeaders(NOW_SECONDS, signature), { body: new TextEncoder().encode(BODY) })).toBe(true);
    // Without `now`: the clock's.
    const current = Math.floor(Date.now() / 1000);
    expect(await verifyWebhookSignature({ secret: NEW, headers: nodeHeaders(current, v1(NEW, current, BODY)), body: BODY })).toBe(true);
  });

  it('accepts either secret of a rotation, held alone or with others, and refuses a secret that signed nothing', async () => {
    const both = `${v1(NEW, NOW_SECONDS, BODY)}, ${v1(OLD, NOW_SECONDS, BODY)}`;
    expect(await verify(nodeHeaders(NOW_SECONDS, both), { secret: NEW })).toBe(true);
    expect(await verify(nodeHeaders(NOW_SECONDS, both), { secret: OLD })).toBe(true);
    expect(await verify(nodeHeaders(NOW_SECONDS, both), { secret: ['whsec_unrelated', OLD] })).toBe(true);
    expect(await verify(nodeHeaders(NOW_SECONDS, v1(NEW, NOW_SECONDS, BODY)), { secret: [OLD, NEW] })).toBe(true);
    expect(await verify(nodeHeaders(NOW_SECONDS, both), { secret: 'whsec_unrelated' })).toBe(false);
    expect(await verify(nodeHeaders(NOW_SECONDS, both), { secret: [] })).toBe(false);
    // Duplicated headers as Node gives them (an array) are read as one list.
    expect(await verify({ 'x-webhook-timestamp': String(NOW_SECONDS), 'x-webhook-signature': [v1('whsec_unrelated', NOW_SECONDS, BODY), v1(OLD, NOW_SECONDS, BODY)] }, { secret: OLD })).toBe(true);
  });

  it('accepts what the server signs, with one secret and with two', async () => {
    expect(await verify(nodeHeaders(NOW_SECONDS, signatureHeader([NEW], NOW_SECONDS, BODY)))).toBe(true);
    const rotated = signatureHeader([NEW, OLD], NOW_SECONDS, BODY);
    expect(rotated.split(', ')).toHaveLength(2);
    expect(await verify(nodeHeaders(NOW_SECONDS, rotated), { secret: OLD })).toBe(true);
    expect(await verify(nodeHeaders(NOW_SECONDS, rotated), { secret: NEW })).toBe(true);
  });

  it('refuses a timestamp further than the tolerance from now, either way (300 s by default)', async () => {
    for (const offset of [-300, 0, 300]) {
      const at = NOW_SECONDS + offset;
      expect(await verify(nodeHeaders(at, v1(NEW, at, BODY))), `offset ${offset}`).toBe(true);
    }
    for (const offset of [-301, 301, -86_400]) {
      const at = NOW_SECONDS + offset;
      expect(await verify(nodeHeaders(at, v1(NEW, at, BODY))), `offset ${offset}`).toBe(false);
    }
    const old = NOW_SECONDS - 600;
    expect(await verify(nodeHeaders(old, v1(NEW, old, BODY)), { toleranceSeconds: 900 })).toBe(true);
    expect(await verify(nodeHeaders(NOW_SECONDS - 10, v1(NEW, NOW_SECONDS - 10, BODY)), { toleranceSeconds: 5 })).toBe(false);
  });

  it('refuses a tampered body, a timestamp the signature does not cover, and a signature cut or changed', async () => {
    const signature = v1(NEW, NOW_SECONDS, BODY);
    expect(await verify(nodeHeaders(NOW_SECONDS, signature), { body: BODY.replace('CREATED', 'DELETED') })).toBe(false);
    expect(await verify(nodeHeaders(NOW_SECONDS, signature), { body: `${BODY} ` })).toBe(false);
    // Re-serialized JSON is not the body that was signed.
    expect(await verify(nodeHeaders(NOW_SECONDS, signature), { body: JSON.stringify(JSON.parse(BODY), null, 2) })).toBe(false);
    expect(await verify(nodeHeaders(NOW_SECONDS + 1, signature))).toBe(false);
    expect(await verify(nodeHeaders(NOW_SECONDS, signature.slice(0, -2)))).toBe(false);
    const flipped = signature.slice(0, -1) + (signature.endsWith('0') ? '1' : '0');
    expect(await verify(nodeHeaders(NOW_SECONDS, flipped))).toBe(false);
  });

  it('refuses missing or malformed headers without throwing', async () => {
    const signature = v1(NEW, NOW_SECONDS, BODY);
    expect(await verify({ 'x-webhook-signature': signature })).toBe(false);
    expect(await verify({ 'x-webhook-timestamp': String(NOW_SECONDS) })).toBe(false);
    expect(await verify(nodeHeaders('', signature))).toBe(false);
    expect(await verify(nodeHeaders(`${NOW_SECONDS}.5`, signature))).toBe(false);
    expect(await verify(nodeHeaders('soon', signature))).toBe(false);
    expect(await verify(nodeHeaders(NOW_SECONDS, signature.replace('v1=', 'v0=')))).toBe(false);
    expect(await verify(nodeHeaders(NOW_SECONDS, signature.replace('v1=', '')))).toBe(false);
    expect(await verify(nodeHeaders(NOW_SECONDS, ''))).toBe(false);
    expect(await verify(new Headers())).toBe(false);
  });
});
