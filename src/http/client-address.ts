/**
 * The address a request comes from (for rate limits and logs), honouring `TRUST_PROXY`.
 *
 * `X-Forwarded-For` is a list each proxy appends to; its leftmost entries are whatever the client wrote. Only the
 * entries added by proxies we trust say anything, so the address is read from the right: the first one, walking
 * left from the socket's peer, that was not added by a trusted hop.
 */
import type { IncomingMessage } from 'node:http';
import proxyaddr from '@fastify/proxy-addr';

/** `TRUST_PROXY`: nothing trusted, a number of hops in front of the server, or the proxies' addresses. */
export type TrustProxy = false | number | readonly string[];

/** Returns the client address of a request under `trust`, built once (address lists are compiled up front). */
export function clientAddressResolver(trust: TrustProxy): (request: IncomingMessage) => string {
  if (trust === false || trust === 0) return (request) => request.socket.remoteAddress ?? 'unknown';
  const trusted = typeof trust === 'number' ? (_addr: string, hop: number) => hop < trust : proxyaddr.compile([...trust]);
  return (request) => (request.socket.remoteAddress === undefined ? 'unknown' : proxyaddr(request, trusted));
}

/**
 * Checks a list of proxy addresses as `TRUST_PROXY` takes them (IPs, CIDR ranges, `loopback`, `linklocal`,
 * `uniquelocal`).
 *
 * @returns the reason the list is refused, or undefined when it is valid.
 */
export function invalidProxyList(list: readonly string[]): string | undefined {
  try {
    proxyaddr.compile([...list]);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}
