/**
 * The typed client of the task-tracker API (`@task-tracker/client`), for browsers and Node alike: it sends the
 * typed document nodes `npm run codegen` generates from this package's operations/*.graphql with the platform's
 * `fetch`, streams subscriptions with graphql-ws over the platform's `WebSocket`, and turns GraphQL errors into
 * exceptions that carry the contract's error code. No Node module is imported: Node before 22 has no global
 * `WebSocket`, so pass one there (`webSocketImpl`, e.g. the `ws` package).
 *
 * Read-your-writes with read replicas: a server with replicas answers each mutation with an `x-min-lsn` header (the
 * WAL position its commit reached). The client keeps the highest one it has received and sends it on every later
 * request, so its reads are served only by a replica that has replayed its writes (or by the primary). From another
 * origin a browser lets scripts read that header only when the server exposes it: a server with CORS_ORIGINS does.
 *
 * Receivers of the server's webhooks check each request with `verifyWebhookSignature` (Web Crypto, see
 * webhook-signature.ts).
 */
import { print } from 'graphql';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { createClient as createWsClient, type Client as WsClient, type ClientOptions as WsClientOptions } from 'graphql-ws/client';
import { WatchTaskEventsDocument, type WatchTaskEventsSubscription, type WatchTaskEventsSubscriptionVariables } from './generated/graphql.js';

export * from './generated/graphql.js';
export * from './webhook-signature.js';

/**
 * A GraphQL error from the server: `code` is its `extensions.code` (docs/API.md, "Errors"), `extensions` the rest,
 * `status` the HTTP status and `requestId` the response's `x-request-id` (the server's log lines carry it), when
 * there was a response.
 */
export class TaskTrackerError extends Error {
  override name = 'TaskTrackerError';
  constructor(
    message: string,
    readonly code: string,
    readonly extensions: Record<string, unknown> = {},
    readonly status?: number,
    readonly requestId?: string,
  ) {
    super(message);
  }
}

export interface ClientOptions {
  /**
   * The GraphQL endpoint, e.g. `http://localhost:4000/graphql`. In a browser also a path (`/graphql`), taken
   * relative to the page. A page on another origin needs the server to list it in CORS_ORIGINS.
   */
  url: string;
  /**
   * A bearer token, when the server has authentication on: the token itself, or a function that returns the
   * current one (asked before every request and every WebSocket connection), so a client outlives its tokens.
   */
  token?: TokenSource;
  /** Extra headers for every request (from another origin, only those the server's CORS allows). */
  headers?: Record<string, string>;
  /** The `fetch` to use; default the platform's (browsers, Node 18 and later). */
  fetch?: typeof fetch;
  /** An `x-min-lsn` to start from (e.g. handed over from another client of the same user). */
  minLsn?: string;
}

/** A token, or where to get the current one (an app's token store, a refresh call). */
export type TokenSource = string | (() => string | undefined | Promise<string | undefined>);

/** The token to send now, if any. */
async function currentToken(source: TokenSource | undefined): Promise<string | undefined> {
  return typeof source === 'function' ? await source() : source;
}

/** The header that carries a write's WAL position (response) and the position reads must reflect (request). */
export const MIN_LSN_HEADER = 'x-min-lsn';
/** The header that names a request in the server's logs: echoed when sent, else made up by the server. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** `hi/lo` hex (PostgreSQL's pg_lsn) as a number; undefined when not one. */
function lsnValue(text: string): bigint | undefined {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  return match ? (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`) : undefined;
}

interface GraphQLResponse<T> {
  data?: T | null;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
}

const MASK = '***';

/**
 * What messages show of the URL and the token: programs print these messages, and fetch quotes both in its own
 * (a URL with a password it refuses, a header value it refuses). The URL is shown with its password masked, also
 * when it does not parse (from the first `:` of its user info to the last `@`: masking too much rather than too
 * little); the token never.
 */
function secretsOf(url: string, source: TokenSource | undefined): { shownUrl: string; mask: (text: string) => string; hide: (token: string | undefined) => void } {
  const replacements: Array<[string, string]> = [];
  let shownUrl = url;
  if (URL.canParse(url)) {
    const parsed = new URL(url);
    if (parsed.password) {
      const password = parsed.password;
      const href = parsed.href;
      parsed.password = MASK;
      shownUrl = parsed.href;
      replacements.push([url, shownUrl], [href, shownUrl], [password, MASK]);
      try {
        replacements.push([decodeURIComponent(password), MASK]);
      } catch {
        // A stray % in the password: its raw form is masked already.
      }
    }
  } else {
    shownUrl = url.replace(/^(\s*(?:[a-z][a-z\d+.-]*:\/\/)?[^:@/\s]*:)[^]*@/i, `$1${MASK}@`);
    if (shownUrl !== url) replacements.push([url, shownUrl]);
  }
  const hidden = new Set<string>();
  /** Tokens from a function are known only once fetched: each is masked from then on. */
  const hide = (token: string | undefined) => {
    for (const value of token ? [token, token.trim()] : []) {
      if (value !== '' && !hidden.has(value)) {
        hidden.add(value);
        replacements.push([value, MASK]);
      }
    }
  };
  if (typeof source === 'string') hide(source);
  return {
    shownUrl,
    mask: (text) => replacements.reduce((masked, [secret, shown]) => masked.split(secret).join(shown), text),
    hide,
  };
}

/** A client bound to one server. */
export interface TaskTrackerClient {
  /** Runs one operation; resolves with its data, rejects with a {@link TaskTrackerError}. */
  request<TResult, TVariables extends Record<string, unknown>>(document: TypedDocumentNode<TResult, TVariables>, variables?: TVariables): Promise<TResult>;
  /** The highest `x-min-lsn` received so far (sent with every request); undefined before the first write. */
  minLsn(): string | undefined;
}

/**
 * Creates a client for queries and mutations over HTTP POST (subscriptions: {@link watchTaskEvents}).
 *
 * @param options the endpoint, a token and the rest of {@link ClientOptions}
 */
export function createClient(options: ClientOptions): TaskTrackerClient {
  // Looked up per call, not captured: a browser's fetch must be called unbound, and a test may replace it.
  const doFetch = options.fetch ?? ((input: string, init?: RequestInit) => globalThis.fetch(input, init));
  const { shownUrl, mask, hide } = secretsOf(options.url, options.token);
  let minLsn = options.minLsn !== undefined && lsnValue(options.minLsn) !== undefined ? options.minLsn : undefined;
  /** Keeps the highest position: responses may arrive out of order. */
  const remember = (received: string | null) => {
    const value = received === null ? undefined : lsnValue(received);
    if (value === undefined) return;
    if (minLsn === undefined || value > (lsnValue(minLsn) ?? 0n)) minLsn = received?.trim();
  };
  return {
    minLsn: () => minLsn,
    async request(document, variables) {
      // Outside the try: a token function that fails is the app's error, not an unreachable server.
      const token = await currentToken(options.token);
      hide(token);
      let res: Response;
      try {
        res = await doFetch(options.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/graphql-response+json, application/json',
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...(minLsn ? { [MIN_LSN_HEADER]: minLsn } : {}),
            ...options.headers,
          },
          body: JSON.stringify({ query: print(document), variables }),
        });
      } catch (err) {
        // In a browser this is also a refusal by CORS: the page may not learn why, and neither may we.
        throw new TaskTrackerError(`Cannot reach ${shownUrl}: ${mask((err as Error).message)}`, 'UNREACHABLE');
      }
      remember(res.headers.get(MIN_LSN_HEADER));
      const requestId = res.headers.get(REQUEST_ID_HEADER) ?? undefined;
      let body: GraphQLResponse<never>;
      try {
        body = (await res.json()) as GraphQLResponse<never>;
      } catch {
        throw new TaskTrackerError(`${shownUrl} answered HTTP ${res.status} without a GraphQL response`, 'BAD_RESPONSE', {}, res.status, requestId);
      }
      const first = body.errors?.[0];
      if (first) {
        const { code, ...rest } = first.extensions ?? {};
        throw new TaskTrackerError(first.message, typeof code === 'string' ? code : 'INTERNAL_SERVER_ERROR', rest, res.status, requestId);
      }
      if (body.data == null) throw new TaskTrackerError(`${shownUrl} answered HTTP ${res.status} without data`, 'BAD_RESPONSE', {}, res.status, requestId);
      return body.data;
    },
  };
}

/** One event of {@link watchTaskEvents}. */
export type WatchedTaskEvent = WatchTaskEventsSubscription['taskEvents'];

export interface WatchHandlers {
  /** Each event, once, in feed order; keep `event.cursor` to resume later with `after`. */
  next(event: WatchedTaskEvent): void;
  /** The stream failed for good (a refused token, an invalid argument, retries used up); not called for reconnects. */
  error?(err: TaskTrackerError): void;
}

/** Options of {@link watchTaskEvents}: those of {@link createClient} (`fetch` unused), and how to connect. */
export interface WatchOptions extends ClientOptions {
  /** Reconnects after a lost connection before giving up (default 10), with graphql-ws's backoff. */
  retryAttempts?: number;
  /**
   * The WebSocket class (default the platform's `globalThis.WebSocket`: browsers, Node 22 and later). On Node 20,
   * which has none, pass the `ws` package's: `import WebSocket from 'ws'`.
   */
  webSocketImpl?: WsClientOptions['webSocketImpl'];
}

/** The WebSocket URL of an HTTP endpoint: http(s) becomes ws(s); a relative one is taken from the page's URL. */
function webSocketUrl(url: string): string | undefined {
  const page = (globalThis as { location?: { href?: string } }).location?.href;
  if (!URL.canParse(url, page)) return undefined;
  const parsed = new URL(url, page);
  if (parsed.protocol === 'http:') parsed.protocol = 'ws:';
  else if (parsed.protocol === 'https:') parsed.protocol = 'wss:';
  return parsed.href;
}

/** A failure graphql-ws reports (GraphQL errors, an Error, a CloseEvent, a bare error Event) as a TaskTrackerError. */
function streamError(err: unknown, shownUrl: string, mask: (text: string) => string): TaskTrackerError {
  if (Array.isArray(err)) {
    const first = err[0] as { message?: string; extensions?: Record<string, unknown> } | undefined;
    const { code, ...rest } = first?.extensions ?? {};
    return new TaskTrackerError(first?.message ?? 'The subscription failed', typeof code === 'string' ? code : 'INTERNAL_SERVER_ERROR', rest);
  }
  if (err instanceof Error) return new TaskTrackerError(`Cannot stream from ${shownUrl}: ${mask(err.message)}`, 'UNREACHABLE');
  const closed = err as { code?: unknown; reason?: unknown };
  if (typeof closed.code === 'number') {
    const reason = typeof closed.reason === 'string' && closed.reason !== '' ? closed.reason : undefined;
    if (closed.code === 4401) return new TaskTrackerError(reason ?? 'Unauthorized', 'UNAUTHENTICATED');
    // 1006: no close frame. A browser says no more, whether the upgrade was refused (403 for an origin not in
    // CORS_ORIGINS, 503 while the server starts) or the network failed.
    const why = closed.code === 1006 ? 'the connection failed or was refused' : `connection closed: ${closed.code}${reason ? ` ${reason}` : ''}`;
    return new TaskTrackerError(`Cannot stream from ${shownUrl}: ${why}`, 'UNREACHABLE');
  }
  return new TaskTrackerError(`Cannot stream from ${shownUrl}: the connection failed or was refused`, 'UNREACHABLE');
}

/**
 * Streams task events over WebSocket (`subscription taskEvents`), reconnecting by itself (up to `retryAttempts`,
 * with graphql-ws's backoff: a server that shuts down closes with 1001 and the next connection may land on another
 * instance) and resuming each time after the last event it delivered, so nothing is missed or repeated.
 * Returns a function that stops the stream.
 *
 * @param options as {@link createClient}; `url` may be the `http(s)://` endpoint (or a path, in a browser): the
 *   `ws(s)://` one is derived. The token goes in graphql-ws's `connection_init` (browsers cannot set upgrade headers);
 *   when the server closes the socket at the token's expiry (4401), a token function is asked for a fresh one and
 *   the stream goes on where it was (a fresh token refused too ends it with `UNAUTHENTICATED`).
 * @param variables the subscription's arguments: `after` to resume from a cursor, `taskId`, `kinds`
 * @param handlers called with each event, and once with the error that ends the stream
 * @throws TaskTrackerError when the URL is not one, or there is no WebSocket class to use
 */
export function watchTaskEvents(options: WatchOptions, variables: WatchTaskEventsSubscriptionVariables, handlers: WatchHandlers): () => Promise<void> {
  const { shownUrl, mask, hide } = secretsOf(options.url, options.token);
  const url = webSocketUrl(options.url);
  if (url === undefined) throw new TaskTrackerError(`Cannot stream from ${shownUrl}: not a URL`, 'UNREACHABLE');
  const webSocketImpl = options.webSocketImpl ?? (globalThis as { WebSocket?: unknown }).WebSocket;
  if (webSocketImpl === undefined) {
    throw new TaskTrackerError('No WebSocket here (Node before 22 has none): pass webSocketImpl, e.g. `import WebSocket from "ws"`', 'NO_WEBSOCKET');
  }
  // graphql-ws sends this same object again on every reconnect: moving `after` along makes the server resume there.
  const live: WatchTaskEventsSubscriptionVariables = { ...variables };
  let ws: WsClient | undefined;
  let stopped = false;
  /** 4401 closes since the last accepted connection: a fresh token refused too ends the stream. */
  let refusals = 0;

  const connect = () => {
    const client = createWsClient({
      url,
      webSocketImpl,
      retryAttempts: options.retryAttempts ?? 10,
      lazy: true,
      // Asked at every (re)connection, so a token function hands over its current token each time.
      connectionParams: async () => {
        const token = await currentToken(options.token);
        hide(token);
        return token ? { authorization: `Bearer ${token}` } : {};
      },
      on: { connected: () => (refusals = 0) },
    });
    ws = client;
    client.subscribe<WatchTaskEventsSubscription>(
      { query: print(WatchTaskEventsDocument), variables: live },
      {
        next: ({ data, errors }) => {
          const first = errors?.[0];
          if (first) {
            const { code, ...rest } = first.extensions ?? {};
            handlers.error?.(new TaskTrackerError(first.message, typeof code === 'string' ? code : 'INTERNAL_SERVER_ERROR', rest));
            return;
          }
          if (!data) return;
          live.after = data.taskEvents.cursor;
          handlers.next(data.taskEvents);
        },
        error: (err) => {
          // The server closes a socket with 4401 when its token expires; graphql-ws never retries that code. With a
          // token function there may be a fresh token: connect again, resuming after the last event delivered.
          if (!stopped && typeof options.token === 'function' && (err as { code?: unknown }).code === 4401 && refusals++ === 0) {
            void client.dispose();
            connect();
            return;
          }
          handlers.error?.(streamError(err, shownUrl, mask));
        },
        complete: () => undefined,
      },
    );
  };
  connect();
  return async () => {
    stopped = true;
    await ws?.dispose();
  };
}
