/**
 * Where webhooks may send requests (the server-side request forgery rules). By default only https URLs whose host
 * is, and resolves to, public unicast addresses: never loopback, private, link-local, CGNAT, multicast or reserved
 * ones. With `allowPrivate` (WEBHOOK_ALLOW_PRIVATE), private and loopback addresses are allowed too, and http to
 * them. The check runs on the URL when a webhook is saved and again on every address DNS returns at delivery
 * ({@link checkedLookup}), so a name that later resolves to 127.0.0.1 is still refused.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

/** Why a URL or an address was refused: one sentence for the caller or the delivery record. */
export class UrlPolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UrlPolicyError';
  }
}

/** Ranges reachable with `allowPrivate`; everything else that is not public unicast stays refused. */
const PRIVATE_RANGES: ReadonlySet<string> = new Set(['loopback', 'private', 'linkLocal', 'uniqueLocal', 'carrierGradeNat']);

/** `undefined` when `address` (an IP literal) may be sent to; otherwise why not. */
export function addressRefusal(address: string, allowPrivate: boolean): string | undefined {
  if (!ipaddr.isValid(address)) return `${address} is not an IP address`;
  let parsed = ipaddr.parse(address);
  // ::ffff:127.0.0.1 is 127.0.0.1.
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  const range = parsed.range();
  if (range === 'unicast') return undefined;
  if (allowPrivate && PRIVATE_RANGES.has(range)) return undefined;
  const what = PRIVATE_RANGES.has(range) ? `a ${range} address (set WEBHOOK_ALLOW_PRIVATE=true to allow private addresses)` : `a ${range} address`;
  return `${address} is ${what}`;
}

/** Is `address` (an IP literal) outside the public internet: loopback, private, link-local and the like? */
export function isPrivateAddress(address: string): boolean {
  return addressRefusal(address, false) !== undefined && addressRefusal(address, true) === undefined;
}

const MAX_URL_LENGTH = 2048;

/**
 * Checks a webhook URL as written (scheme, credentials, length, an IP literal host); names are checked when they
 * resolve. Returns the normalized URL; throws {@link UrlPolicyError}.
 */
export function checkWebhookUrl(raw: string, allowPrivate: boolean): URL {
  const text = raw.trim();
  if (text.length > MAX_URL_LENGTH) throw new UrlPolicyError(`url is longer than ${MAX_URL_LENGTH} characters`);
  if (!URL.canParse(text)) throw new UrlPolicyError('url is not an absolute URL');
  const url = new URL(text);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UrlPolicyError('url must be https');
  if (url.username !== '' || url.password !== '') throw new UrlPolicyError('url must not carry a user name or password');
  if (url.hash !== '') throw new UrlPolicyError('url must not have a #fragment');
  const host = hostOf(url);
  if (host === '') throw new UrlPolicyError('url has no host');
  if (isIP(host)) {
    const refusal = addressRefusal(host, allowPrivate);
    if (refusal) throw new UrlPolicyError(`url is refused: ${refusal}`);
  } else if (/(^|\.)localhost$/i.test(host.replace(/\.$/, ''))) {
    // Resolved by the resolver itself, without DNS: refused up front rather than at the first delivery.
    if (!allowPrivate) throw new UrlPolicyError(`url is refused: ${host} is a loopback name (set WEBHOOK_ALLOW_PRIVATE=true to allow private addresses)`);
  }
  if (url.protocol === 'http:' && !(allowPrivate && (isIP(host) ? isPrivateAddress(host) : true))) {
    throw new UrlPolicyError(allowPrivate ? 'url must be https unless its host is a private address' : 'url must be https');
  }
  return url;
}

/** The URL's host without the brackets of an IPv6 literal. */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/**
 * A `lookup` for node:http(s) requests: resolves like the system does, then refuses the connection (with a
 * {@link UrlPolicyError}) if any address returned is not allowed, and connects only to addresses it checked, so
 * a name cannot resolve to one address for the check and another for the connection.
 *
 * @param plainHttp the request is http: then every address must be private (http is allowed only to those).
 */
export function checkedLookup(allowPrivate: boolean, plainHttp = false): LookupFunction {
  return (hostname, options, callback) => {
    const all: LookupAllOptions = { ...options, all: true };
    dnsLookup(hostname, all, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      for (const { address } of addresses) {
        const refusal = addressRefusal(address, allowPrivate) ?? (plainHttp && !isPrivateAddress(address) ? `${address} is public and the url is http, not https` : undefined);
        if (refusal) return callback(new UrlPolicyError(`${hostname} resolves to ${refusal}`), '', 0);
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first) return callback(new UrlPolicyError(`${hostname} resolves to no address`), '', 0);
      return callback(null, first.address, first.family);
    });
  };
}
