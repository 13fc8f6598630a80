/**
 * How a webhook request is signed (the README, "Webhooks", states the same scheme for receivers):
 *
 *   X-Webhook-Timestamp: <unix seconds>
 *   X-Webhook-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>[, v1=<hex with the previous secret>]
 *
 * The key is the secret's text as UTF-8. During a rotation's overlap a second `v1=` signature, made with the
 * previous secret, follows the first, so a receiver holding either secret accepts the request.
 */
import { createHmac, randomBytes } from 'node:crypto';

export const TIMESTAMP_HEADER = 'x-webhook-timestamp';
export const SIGNATURE_HEADER = 'x-webhook-signature';
export const DELIVERY_HEADER = 'x-webhook-delivery';
export const EVENT_HEADER = 'x-webhook-event';
export const WEBHOOK_HEADER = 'x-webhook-id';

/** A new signing secret: `whsec_` and 32 random bytes in base64url. */
export function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

/** The hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`. */
export function sign(secret: string, timestamp: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** The `X-Webhook-Signature` value: one `v1=` signature per secret, the current one first. */
export function signatureHeader(secrets: readonly string[], timestamp: number, body: string): string {
  return secrets.map((s) => `v1=${sign(s, timestamp, body)}`).join(', ');
}
