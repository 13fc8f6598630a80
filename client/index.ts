/**
 * The typed client: sends the typed document nodes `npm run codegen` generates from client/operations to a
 * task-tracker server, and turns GraphQL errors into exceptions that carry the contract's error code.
 *
 * Read-your-writes with read replicas: a server with replicas answers each mutation with an `x-min-lsn` header (the
 * WAL position its commit reached). The client keeps the highest one it has received and sends it on every later
 * request, so its reads are served only by a replica that has replayed its writes (or by the primary).
 */
import { print } from 'graphql';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { createClient as createWsClient } from 'graphql-ws';
import WebSocket from 'ws';
import { maskKnownSecrets, maskUrl } from '../src/secrets.js';
import { WatchTaskEventsDocument, type WatchTaskEventsSubscription, type WatchTaskEventsSubscriptionVariables } from './generated/graphql.js';

export * from './generated/graphql.js';

/** A GraphQL error from the server: `code` is its `extensions.code` (docs/API.md, "Errors"), `extensions` the rest. */
export class TaskTrackerError extends Error {
  override name = 'TaskTrackerError';
  constructor(
    message: string,
    readonly code: string,
    readonly extensions: Record<string, unknown> = {},
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface ClientOptions {
  /** The GraphQL endpoint, e.g. `http://localhost:4000/graphql`. */
  url: string;
  /** A bearer token, when the server has authentication on. */
  token?: string;
  /** Extra headers for every request. */
  headers?: Record<string, string>;
  fetch?: typeof fetch;
  /** An `x-min-lsn` to start from (e.g. handed over from another client of the same user). */
  minLsn?: string;
}

/** The header that carries a write's WAL position (response) and the position reads must reflect (request). */
export const MIN_LSN_HEADER = 'x-min-lsn';

/** `hi/lo` hex (PostgreSQL's pg_lsn) as a number; undefined when not one. */
function lsnValue(text: string): bigint | undefined {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  return match ? (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`) : undefined;
}

interface GraphQLResponse<T> {
  data?: T | null;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
}

/** A client bound to one server. */
export interface TaskTrackerClient {
  /** Runs one operation; resolves with its data, rejects with a {@link TaskTrackerError}. */
  request<TResult, TVariables extends Record<string, unknown>>(document: TypedDocumentNode<TResult, TVariables>, variables?: TVariables): Promise<TResult>;
  /** The highest `x-min-lsn` received so far (sent with every request); undefined before the first write. */
  minLsn(): string | undefined;
}

/** Creates a client. */
export function createClient(options: ClientOptions): TaskTrackerClient {
  const doFetch = options.fetch ?? fetch;
  // Messages are printed by the CLI: never the URL's password, nor the token (fetch quotes both in its errors).
  const url = maskUrl(options.url);
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
      let res: Response;
      try {
        res = await doFetch(options.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/graphql-response+json, application/json',
            ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
            ...(minLsn ? { [MIN_LSN_HEADER]: minLsn } : {}),
            ...options.headers,
          },
          body: JSON.stringify({ query: print(document), variables }),
        });
      } catch (err) {
        throw new TaskTrackerError(`Cannot reach ${url}: ${maskKnownSecrets((err as Error).message, [options.token])}`, 'UNREACHABLE');
      }
      remember(res.headers.get(MIN_LSN_HEADER));
      let body: GraphQLResponse<never>;
      try {
        body = (await res.json()) as GraphQLResponse<never>;
      } catch {
        throw new TaskTrackerError(`${url} answered HTTP ${res.status} without a GraphQL response`, 'BAD_RESPONSE', {}, res.status);
      }
      const first = body.errors?.[0];
      if (first) {
        const { code, ...rest } = first.extensions ?? {};
        throw new TaskTrackerError(first.message, typeof code === 'string' ? code : 'INTERNAL_SERVER_ERROR', rest, res.status);
      }
      if (body.data == null) throw new TaskTrackerError(`${url} answered HTTP ${res.status} without data`, 'BAD_RESPONSE', {}, res.status);
      return body.data;
    },
  };
}

/** One event of {@link watchTaskEvents}. */
export type WatchedTaskEvent = WatchTaskEventsSubscription['taskEvents'];

export interface WatchHandlers {
  /** Each event, once, in feed order; keep `event.cursor` to resume later with `after`. */
  next(event: WatchedTaskEvent): void;
  /** The stream failed for good (a refused token, an invalid argument); not called for reconnects. */
  error?(err: TaskTrackerError): void;
}

/**
 * Streams task events over WebSocket (`subscription taskEvents`), reconnecting by itself (up to `retryAttempts`,
 * with graphql-ws's backoff: a server that shuts down closes with 1001 and the next connection may land on another
 * instance) and resuming each time after the last event it delivered, so nothing is missed or repeated.
 * Returns a function that stops the stream.
 *
 * @param options the same as {@link createClient}; `url` may be the `http(s)://` endpoint, the `ws(s)://` one is derived
 */
export function watchTaskEvents(
  options: ClientOptions & { retryAttempts?: number },
  variables: WatchTaskEventsSubscriptionVariables,
  handlers: WatchHandlers,
): () => Promise<void> {
  const ws = createWsClient({
    url: options.url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    retryAttempts: options.retryAttempts ?? 10,
    lazy: true,
    connectionParams: options.token ? { authorization: `Bearer ${options.token}` } : undefined,
  });
  // graphql-ws sends this same object again on every reconnect: moving `after` along makes the server resume there.
  const live: WatchTaskEventsSubscriptionVariables = { ...variables };
  ws.subscribe<WatchTaskEventsSubscription>(
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
        const first = Array.isArray(err) ? (err[0] as { message: string; extensions?: Record<string, unknown> } | undefined) : undefined;
        const closed = err as { code?: number; reason?: string };
        const message =
          first?.message ?? (err instanceof Error ? maskKnownSecrets(err.message, [options.token]) : `connection closed: ${closed.code ?? ''} ${closed.reason ?? ''}`.trim());
        const code = typeof first?.extensions?.code === 'string' ? first.extensions.code : closed.code === 4401 ? 'UNAUTHENTICATED' : 'UNREACHABLE';
        handlers.error?.(new TaskTrackerError(message, code, first?.extensions ?? {}));
      },
      complete: () => undefined,
    },
  );
  return () => Promise.resolve(ws.dispose());
}
