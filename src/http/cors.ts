/**
 * Cross-origin access for browser frontends (`CORS_ORIGINS`): a page on another origin (a React or Vite app on
 * its own port or domain) may call `/graphql` over HTTP and open its WebSocket.
 *
 * - Off by default: no CORS header on any response, and `OPTIONS` answered as without CORS (405 on `/graphql`).
 * - HTTP, by @fastify/cors: a preflight from a listed origin is answered 204 with the methods and headers clients
 *   send; every response to a listed origin carries `Access-Control-Allow-Origin` and exposes `x-request-id`,
 *   `x-min-lsn` and `retry-after` to scripts. A request from an origin not on the list (or without `Origin`: not a
 *   browser's cross-origin request) gets no CORS header at all, and its preflight the 405 of any `OPTIONS`.
 * - WebSocket, here: CORS does not cover upgrades (a browser opens a WebSocket to any origin and only says where
 *   the page came from in `Origin`), so an upgrade whose `Origin` is neither listed nor the server's own is refused
 *   with 403. One without `Origin` (not a browser) is not judged; without CORS_ORIGINS no upgrade is.
 * - `*` allows every origin; it is refused with `CORS_CREDENTIALS=true` (browsers refuse that pair, and it would let
 *   any site send its visitors' cookies). Bearer tokens are not credentials in CORS' sense: a page sends them in
 *   `Authorization` itself, so neither `*` nor a listed origin lets a site act for a user whose token it lacks.
 * - CSRF prevention is Apollo's as before: it refuses the "simple" requests a browser sends without a preflight.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyCorsOptions } from '@fastify/cors';
import { z } from 'zod';

/** Cross-origin access as configured; `undefined` in the app's configuration when CORS_ORIGINS is unset. */
export interface CorsConfig {
  /** `CORS_ORIGINS`: the exact origins allowed (`https://app.example.com`), or `'*'` for any. */
  readonly origins: readonly string[] | '*';
  /**
   * `CORS_CREDENTIALS` (default false): send `Access-Control-Allow-Credentials: true`, so pages may send cookies
   * or HTTP authentication with `credentials: 'include'`. Only a proxy in front that authenticates by cookie needs
   * it; the server's own bearer token is a header the page sets. Refused with `*`.
   */
  readonly credentials: boolean;
}

/** Request headers a preflight allows: what the typed client, Apollo Client, urql and GraphiQL send. */
export const CORS_ALLOWED_HEADERS: readonly string[] = [
  'content-type',
  'authorization',
  // Either one satisfies Apollo's CSRF prevention for a GET (which otherwise needs no preflight).
  'apollo-require-preflight',
  'x-apollo-operation-name',
  'x-request-id',
  'x-min-lsn',
];
/** Response headers scripts may read: the request id (for support), the read-your-writes position, a backoff. */
export const CORS_EXPOSED_HEADERS: readonly string[] = ['x-request-id', 'x-min-lsn', 'retry-after'];
/** How long a browser may cache a preflight (seconds); Chromium caps it at 7200, and without it waits 5. */
export const CORS_MAX_AGE_SECONDS = 600;

/**
 * One origin as a browser sends it in `Origin`: `scheme://host[:port]`, lower case, no default port, no path or
 * trailing slash. http(s) is checked against `URL`'s own serialization; another scheme (an app shell's, such as
 * `capacitor://localhost`) has no serialization to compare with, so only its shape is checked.
 *
 * @returns undefined when `origin` is written exactly as a browser sends it, else why not.
 */
function originProblem(origin: string): string | undefined {
  if (origin === 'null') return '"null" is the origin of sandboxed pages and local files, which any site can produce: it cannot be allowed';
  if (origin === '*') return '* allows every origin, so it stands alone: CORS_ORIGINS=*';
  const hint = 'expected scheme://host[:port] with nothing after it, e.g. https://app.example.com or http://localhost:5173';
  if (!URL.canParse(origin)) return `${JSON.stringify(origin)} is not an origin: ${hint}`;
  const url = new URL(origin);
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    if (url.origin === origin) return undefined;
    const cut = url.username || url.password || url.pathname !== '/' || url.search || url.hash;
    return cut
      ? `${JSON.stringify(origin)} is not an origin: ${hint}`
      : `${JSON.stringify(origin)} is not written as a browser sends it, which must match exactly: ${url.origin}`;
  }
  return /^[a-z][a-z\d+.-]*:\/\/[a-z\d.-]+(?::\d{1,5})?$/.test(origin) ? undefined : `${JSON.stringify(origin)} is not an origin: ${hint}`;
}

/**
 * `CORS_ORIGINS` parsed for the configuration schema: a comma-separated list of exact origins, or `*` alone.
 * Blanks around entries are ignored; an invalid entry fails the boot naming it.
 */
export const corsOriginsSchema = z.string().transform((text, ctx): readonly string[] | '*' => {
  const entries = text
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
  if (entries.length === 1 && entries[0] === '*') return '*';
  if (entries.length === 0) {
    ctx.addIssue({ code: 'custom', message: 'expected origins separated by commas, e.g. https://app.example.com,http://localhost:5173' });
    return z.NEVER;
  }
  for (const entry of entries) {
    const problem = originProblem(entry);
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
  }
  return [...new Set(entries)];
});

/**
 * Is a browser's cross-origin call from `origin` allowed? Only for a request that has an `Origin` header;
 * callers decide what a request without one means.
 */
function listed(cors: CorsConfig, origin: string): boolean {
  return cors.origins === '*' || cors.origins.includes(origin);
}

/**
 * @fastify/cors options for `cors`: decided per request, so an origin not on the list (or a request without
 * `Origin`, or an `OPTIONS` that is not a preflight) gets no CORS header at all and falls through to the server's
 * own routes and 405, instead of a bare 204 or @fastify/cors's plain-text 400.
 *
 * @param cors the configured list; register the plugin only when CORS_ORIGINS is set.
 */
export function corsPluginOptions(cors: CorsConfig): FastifyCorsOptions {
  const allowed: FastifyCorsOptions = {
    credentials: cors.credentials,
    // GET for Apollo's GET queries; OPTIONS itself is never preflighted.
    methods: ['GET', 'POST'],
    allowedHeaders: [...CORS_ALLOWED_HEADERS],
    exposedHeaders: [...CORS_EXPOSED_HEADERS],
    maxAge: CORS_MAX_AGE_SECONDS,
  };
  return {
    delegator: (req, callback) => {
      const origin = req.headers.origin;
      const preflight = req.method === 'OPTIONS';
      const ok = origin !== undefined && listed(cors, origin) && (!preflight || req.headers['access-control-request-method'] !== undefined);
      // A listed origin is echoed (with Vary: Origin, which the plugin adds for a per-request decision).
      callback(null, ok ? { ...allowed, origin: cors.origins === '*' ? '*' : origin } : { origin: false });
    },
  };
}

/**
 * The CORS headers of a response to `request` (not a preflight), for answers written below Fastify, where the
 * plugin does not run (the 413 of an oversized body): empty for an origin not on the list or no CORS at all.
 */
export function corsResponseHeaders(cors: CorsConfig | undefined, request: IncomingMessage): Record<string, string> {
  const origin = request.headers.origin;
  if (cors === undefined || origin === undefined || !listed(cors, origin)) return {};
  return {
    'access-control-allow-origin': cors.origins === '*' ? '*' : origin,
    'access-control-expose-headers': CORS_EXPOSED_HEADERS.join(', '),
    ...(cors.credentials ? { 'access-control-allow-credentials': 'true' } : {}),
    ...(cors.origins === '*' ? {} : { vary: 'Origin' }),
  };
}

/**
 * For a WebSocket upgrade: refuses (403, in the GraphQL error shape, before the upgrade) a browser's upgrade from
 * an origin that is neither on the list nor the server's own. The server's own is the page it serves (the
 * playground) and is told by `Origin`'s host matching `Host`, whatever the scheme a proxy in front terminates.
 *
 * @param cors the configured list; undefined (CORS_ORIGINS unset) accepts every upgrade, as without CORS.
 * @returns true when the upgrade was refused and `socket` ended: the caller stops there.
 */
export function refuseCrossOriginUpgrade(cors: CorsConfig | undefined, request: IncomingMessage, socket: Duplex, requestId: string): boolean {
  const origin = request.headers.origin;
  if (cors === undefined || origin === undefined || listed(cors, origin)) return false;
  if (URL.canParse(origin) && request.headers.host !== undefined && new URL(origin).host === request.headers.host.toLowerCase()) return false;
  const body = JSON.stringify({
    errors: [{ message: `WebSocket connections from ${origin} are not allowed: the origin is not in CORS_ORIGINS`, extensions: { code: 'FORBIDDEN' } }],
  });
  socket.end(
    'HTTP/1.1 403 Forbidden\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\n' +
      `x-request-id: ${requestId}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  return true;
}
