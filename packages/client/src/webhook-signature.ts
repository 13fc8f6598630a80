/**
 * Checking a webhook request's signature, for receivers in Node and in browsers' kin (Deno, Bun, Workers): Web
 * Crypto only, no Node module. The scheme (the README, "Webhooks"):
 *
 *   X-Webhook-Timestamp: <unix seconds>
 *   X-Webhook-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>[, v1=<hex>]
 *
 * The key is the secret's text as UTF-8. After a rotation the server signs with the new secret and the previous
 * one for a while, one `v1=` each, so a receiver holding either secret accepts the request.
 */

/** The header carrying the signing time, in unix seconds. */
export const WEBHOOK_TIMESTAMP_HEADER = 'x-webhook-timestamp';
/** The header carrying the `v1=` signatures. */
export const WEBHOOK_SIGNATURE_HEADER = 'x-webhook-signature';
/** The header carrying the event's id: the same on every attempt and redelivery, so receivers dedupe by it. */
export const WEBHOOK_EVENT_HEADER = 'x-webhook-event';

/** Request headers: a fetch `Headers` (or anything with `get`), or a plain object such as Node's `req.headers`. */
export type WebhookHeaders = { get(name: string): string | null } | Readonly<Record<string, string | readonly string[] | undefined>>;

export interface VerifyWebhookSignatureOptions {
  /** The signing secret the receiver holds, or several (the new and the old one while switching over). */
  secret: string | readonly string[];
  /** The request's headers. */
  headers: WebhookHeaders;
  /** The body exactly as received, before any JSON parsing: the signature covers these bytes. */
  body: string | Uint8Array | ArrayBuffer;
  /** How far, in seconds, the timestamp may be from now either way (default 300): older requests are replays. */
  toleranceSeconds?: number;
  /** The time to compare the timestamp with (default now). */
  now?: Date;
}

/** The default of {@link VerifyWebhookSignatureOptions.toleranceSeconds}. */
export const WEBHOOK_TOLERANCE_SECONDS = 300;

const encoder = new TextEncoder();

/** One header's value, whatever the shape of `headers`; names compare case-insensitively. */
function headerValue(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof headers.get === 'function') return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return typeof value === 'string' ? value : value?.join(', ');
}

function bytesOf(body: string | Uint8Array | ArrayBuffer): Uint8Array {
  if (typeof body === 'string') return encoder.encode(body);
  return body instanceof Uint8Array ? body : new Uint8Array(body);
}

function hex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Compares without stopping at the first difference, so the time taken tells nothing about where it was. */
function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

/**
 * Checks that a webhook request was signed by the server with one of the receiver's secrets, over this very body,
 * within the tolerance of now. Resolves false (never throws) for a missing or malformed header, a timestamp out of
 * tolerance, or no matching signature; answer such requests with 401 and do not act on them.
 *
 * @param options the secret(s), the request's headers and raw body, and optionally the tolerance and the time
 * @returns whether the request is authentic
 * @throws Error when the platform has no Web Crypto (`crypto.subtle`: browsers offer it only on secure origins)
 */
export async function verifyWebhookSignature(options: VerifyWebhookSignatureOptions): Promise<boolean> {
  // Typed as possibly absent: browsers leave crypto.subtle undefined on pages that are not secure origins.
  const subtle = (globalThis as { crypto?: { subtle?: typeof crypto.subtle } }).crypto?.subtle;
  if (subtle === undefined) throw new Error('verifyWebhookSignature needs Web Crypto (crypto.subtle), which this platform does not offer here');
  const timestampText = headerValue(options.headers, WEBHOOK_TIMESTAMP_HEADER)?.trim();
  const signatureText = headerValue(options.headers, WEBHOOK_SIGNATURE_HEADER);
  if (!timestampText || !/^\d{1,15}$/.test(timestampText) || !signatureText) return false;
  const timestamp = Number(timestampText);
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (Math.abs(now - timestamp) > (options.toleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS)) return false;

  const signatures = signatureText
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.startsWith('v1='))
    .map((part) => part.slice(3).toLowerCase());
  if (signatures.length === 0) return false;

  // "<timestamp>." then the body's bytes, copied into one ArrayBuffer-backed array (what Web Crypto takes).
  const prefix = encoder.encode(`${timestampText}.`);
  const body = bytesOf(options.body);
  const signed = new Uint8Array(prefix.length + body.length);
  signed.set(prefix);
  signed.set(body, prefix.length);

  let matched = false;
  for (const secret of typeof options.secret === 'string' ? [options.secret] : options.secret) {
    const key = await subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    const expected = hex(await subtle.sign('HMAC', key, signed));
    // Every pair is compared, a match or not, so timing tells nothing about which one matched.
    for (const signature of signatures) matched = constantTimeEqual(expected, signature) || matched;
  }
  return matched;
}
