/**
 * Subscribing to a server over a real WebSocket with the graphql-ws client (`ws` as the socket), collecting what
 * arrives so tests can wait for it.
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { waitFor } from './server.js';

/** The fields a test reads from each event. */
export const EVENT_FIELDS = 'id taskId kind actor cursor changes';

export interface ReceivedEvent {
  id: string;
  taskId: string;
  kind: string;
  actor: string;
  cursor: string;
  changes: Record<string, unknown>;
  task?: { id: string; title: string; version: number } | null;
}

export interface Subscription {
  client: Client;
  /** `data.taskEvents` of every `next` message, in order. */
  events: ReceivedEvent[];
  /** Errors of `next` and `error` messages (formatted GraphQL errors), and socket-level errors. */
  errors: Array<{ message: string; extensions?: Record<string, unknown> }>;
  /** The socket's close event, once it closed. */
  closed: { code: number; reason: string } | undefined;
  completed: boolean;
  /** Resolves once the server acknowledged the connection. */
  connected: Promise<void>;
  /** Waits until `n` events have arrived. */
  waitForEvents(n: number, timeoutMs?: number): Promise<ReceivedEvent[]>;
  /** Waits until the socket closed. */
  waitForClose(timeoutMs?: number): Promise<{ code: number; reason: string }>;
  dispose(): Promise<void>;
}

export interface SubscribeOptions {
  variables?: Record<string, unknown>;
  /** Sent in connection_init as `{ authorization: "Bearer <token>" }`. */
  token?: string;
  /** Upgrade request headers (e.g. `x-request-id`, `authorization`). */
  headers?: Record<string, string>;
  /** The whole operation, instead of the default `taskEvents` subscription. */
  query?: string;
  /** Extra selection on each event (e.g. `task { id title version }`). */
  select?: string;
}

/** Opens one connection and one subscription on `httpUrl`'s `/graphql`. */
export function subscribe(httpUrl: string, options: SubscribeOptions = {}): Subscription {
  const url = `${httpUrl.replace(/^http/, 'ws')}/graphql`;
  const headers = options.headers;
  // graphql-ws instantiates `new webSocketImpl(url, protocol)`: a subclass adds the upgrade headers.
  class HeaderSocket extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { headers });
    }
  }
  let acknowledged: () => void = () => undefined;
  const connected = new Promise<void>((resolve) => (acknowledged = resolve));
  const client = createClient({
    url,
    webSocketImpl: headers ? HeaderSocket : WebSocket,
    retryAttempts: 0,
    lazy: true,
    connectionParams: options.token ? { authorization: `Bearer ${options.token}` } : undefined,
    on: {
      connected: () => acknowledged(),
      closed: (event) => {
        const e = event as { code: number; reason: string };
        sub.closed = { code: e.code, reason: String(e.reason) };
      },
    },
  });
  const query =
    options.query ??
    `subscription Watch($after: String, $taskId: ID, $kinds: [TaskEventKind!]) {
       taskEvents(after: $after, taskId: $taskId, kinds: $kinds) { ${EVENT_FIELDS} ${options.select ?? ''} }
     }`;
  const sub: Subscription = {
    client,
    events: [],
    errors: [],
    closed: undefined,
    completed: false,
    connected,
    waitForEvents: (n, timeoutMs = 15_000) =>
      waitFor(() => sub.events.length >= n || sub.errors.length > 0, `${n} events (have ${sub.events.length})`, timeoutMs).then(() => {
        if (sub.events.length < n) throw new Error(`subscription failed: ${JSON.stringify(sub.errors)}`);
        return sub.events;
      }),
    waitForClose: (timeoutMs = 15_000) => waitFor(() => sub.closed, 'the socket to close', timeoutMs),
    dispose: async () => {
      await client.dispose();
    },
  };
  client.subscribe<{ taskEvents: ReceivedEvent }>(
    { query, variables: options.variables ?? {} },
    {
      next: (result) => {
        if (result.errors) sub.errors.push(...(result.errors as Subscription['errors']));
        if (result.data?.taskEvents) sub.events.push(result.data.taskEvents);
      },
      error: (err) => {
        if (Array.isArray(err)) sub.errors.push(...(err as Subscription['errors']));
        else if (err instanceof Error) sub.errors.push({ message: err.message });
        else {
          const e = err as { code?: number; reason?: string };
          sub.errors.push({ message: `closed ${e.code ?? ''} ${e.reason ?? ''}`.trim(), extensions: { closeCode: e.code } });
        }
      },
      complete: () => (sub.completed = true),
    },
  );
  return sub;
}

/** Reads one unlabelled gauge from the server's `/metrics`. */
export async function gauge(httpUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : Number.NaN;
}

/** Waits until the server holds `n` open subscription streams (a stream without `after` starts at that moment). */
export async function waitForSubscriptions(httpUrl: string, n: number): Promise<void> {
  await waitFor(async () => (await gauge(httpUrl, 'graphql_subscriptions_active')) === n, `${n} active subscriptions`);
}
