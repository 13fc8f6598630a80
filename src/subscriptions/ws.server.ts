/**
 * GraphQL over WebSocket at `/graphql` (the graphql-ws protocol, `graphql-transport-ws`): a `ws` server without a
 * server of its own, fed by the HTTP server's `upgrade` events, with graphql-ws's `useServer` on top.
 *
 * - Upgrades are taken only while the app accepts operations; otherwise 503 (booting, draining), and 404 off
 *   `/graphql`. Each connection gets a request id (a valid incoming `x-request-id`, echoed on the 101 response, or
 *   a new one) that every log line of its operations carries.
 * - Authentication (when on): the same bearer token as HTTP, in the `connection_init` payload
 *   (`{ "authorization": "Bearer <JWT>" }`) or in the upgrade request's `Authorization` header; a missing or bad
 *   token closes the socket with 4401 Unauthorized, and so does the token's `exp` when it passes (the token is
 *   checked once, at `connection_init`): the client reconnects with a fresh token and resumes with `after`.
 * - Origin (with CORS_ORIGINS): a browser's upgrade from an origin not listed is refused with 403 (src/http/cors.ts).
 * - Every subscription passes the checks of src/subscriptions/ws.checks.ts; errors are masked like HTTP ones.
 * - Shutdown: `close()` closes every socket with 1001 Going Away (clients reconnect, to another instance), and
 *   cuts the ones that do not finish the closing handshake in time.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import type { ExecutionArgs, GraphQLError, GraphQLFormattedError, GraphQLSchema } from 'graphql';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Authenticator, Principal } from '../auth/authenticator.js';
import type { RateLimiter } from '../http/rate-limit.js';
import { refuseCrossOriginUpgrade, type CorsConfig } from '../http/cors.js';
import { requestIdOf } from '../http/server.js';
import { createContext, type AppServices, type GraphQLContext } from '../graphql/context.js';
import { AppError } from '../errors.js';
import { createFormatError, toGraphQLError } from '../graphql/errors.js';
import type { Operation } from '../lifecycle/operations.js';
import { checkOperation } from './ws.checks.js';
import { bindFeedScope } from './subscription.resolvers.js';
import type { EventHub } from './hub.js';

/** Subscriptions one connection may hold at once: each is a stream with a queue. */
export const MAX_SUBSCRIPTIONS_PER_CONNECTION = 50;
/** How long `close()` waits for clients to answer the close frame before cutting their sockets. */
const CLOSE_HANDSHAKE_MS = 1000;
const UNAUTHORIZED = 4401;
/** setTimeout's longest delay (2^31-1 ms, about 24.8 days): a longer one fires at once, with a warning. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Per connection, beside graphql-ws's own `socket` and `request`. */
interface Connection {
  requestId: string;
  log: Logger;
  principal?: Principal;
  rateKey: string;
}

export interface WsServerOptions {
  log: Logger;
  limits: Config['limits'];
  nodeEnv: string | undefined;
  /** The address a request comes from (`TRUST_PROXY`), for rate limiting. */
  clientAddress: (request: IncomingMessage) => string;
  authenticator: Authenticator | undefined;
  limiter: RateLimiter;
  hub: EventHub;
  /** Does the app take operations now (booted, not draining)? */
  accepting(): boolean;
  /** CORS_ORIGINS: a browser's upgrade from an origin not listed is refused with 403 (src/http/cors.ts). */
  cors?: CorsConfig | undefined;
}

/** What the server needs once the app has booted. */
export interface WsBackends {
  schema: GraphQLSchema;
  root: EntityManager;
  services: AppServices;
}

function refuse(socket: Duplex, status: number, requestId: string, message: string): void {
  const body = JSON.stringify({ errors: [{ message, extensions: { code: status === 404 ? 'NOT_FOUND' : 'SERVICE_UNAVAILABLE' } }] });
  const retry = status === 503 ? 'retry-after: 1\r\n' : '';
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\n${retry}` +
      `x-request-id: ${requestId}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}


/** The bearer token: from `connection_init` (browsers cannot set upgrade headers), else the upgrade header. */
function authorizationOf(params: Readonly<Record<string, unknown>> | undefined, request: IncomingMessage): string | undefined {
  const given = params?.authorization ?? params?.Authorization;
  return typeof given === 'string' ? given : request.headers.authorization;
}

/**
 * Closes `socket` with 4401 once `expiresAt` (milliseconds since the epoch) has passed, and not after the socket
 * closed: the connection was authenticated once, so it must not outlive its token.
 */
function closeAtExpiry(socket: WebSocket, expiresAt: number, log: Logger): void {
  if (socket.readyState !== socket.OPEN) return; // it went away while the token was being checked
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const remaining = expiresAt - Date.now();
    if (remaining > 0) {
      // Waits at most as long as setTimeout can, then looks again; the clock is read afresh each time.
      timer = setTimeout(arm, Math.min(remaining, MAX_TIMER_MS));
      return;
    }
    log.info({ expiresAt: new Date(expiresAt).toISOString() }, 'closing the WebSocket connection: the token expired');
    socket.close(UNAUTHORIZED, 'Unauthorized: the token expired');
  };
  socket.once('close', () => clearTimeout(timer));
  arm();
}

export class SubscriptionWsServer {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  private readonly connections = new WeakMap<IncomingMessage, Connection>();
  private backends: WsBackends | undefined;
  private disposable: { dispose(): void | Promise<void> } | undefined;
  private closing = false;

  constructor(private readonly options: WsServerOptions) {
    this.wss.on('headers', (headers, request) => {
      const connection = this.connections.get(request);
      if (connection) headers.push(`x-request-id: ${connection.requestId}`);
    });
  }

  /** Open WebSocket connections. */
  get sockets(): number {
    return this.wss.clients.size;
  }

  /** Takes the HTTP server's upgrade requests (before `listen`, or any time after). */
  bind(server: Server): void {
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(request, socket, head));
  }

  private upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const requestId = requestIdOf(request);
    socket.on('error', () => undefined); // a client that vanishes mid-handshake is not our error
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/graphql') return refuse(socket, 404, requestId, 'WebSocket connections go to /graphql');
    if (refuseCrossOriginUpgrade(this.options.cors, request, socket, requestId)) return;
    if (this.closing || !this.backends || !this.options.accepting()) {
      return refuse(socket, 503, requestId, 'Service unavailable: the server is starting or shutting down. Try again shortly.');
    }
    const log = this.options.log.child({ requestId });
    this.connections.set(request, { requestId, log, rateKey: `ip:${this.options.clientAddress(request)}` });
    this.wss.handleUpgrade(request, socket, head, (ws: WebSocket) => this.wss.emit('connection', ws, request));
  }

  /** Starts serving subscriptions (once the app has booted). */
  attach(backends: WsBackends): void {
    this.backends = backends;
    const { authenticator, limits, limiter, nodeEnv, hub } = this.options;
    const formatError = createFormatError(nodeEnv === 'development');
    const format = (errors: readonly GraphQLError[]): GraphQLFormattedError[] => errors.map((e) => formatError(e.toJSON(), e));
    const connectionOf = (request: IncomingMessage): Connection => {
      const found = this.connections.get(request);
      if (!found) throw new Error('WebSocket connection without its upgrade record');
      return found;
    };
    this.disposable = useServer(
      {
        isProd: nodeEnv === 'production',
        onConnect: async (ctx) => {
          const connection = connectionOf(ctx.extra.request);
          if (!authenticator) return true;
          try {
            connection.principal = await authenticator.authenticate(authorizationOf(ctx.connectionParams, ctx.extra.request));
            connection.rateKey = `sub:${connection.principal.subject}`;
            const { expiresAt } = connection.principal;
            if (expiresAt !== undefined) closeAtExpiry(ctx.extra.socket, expiresAt, connection.log);
            return true;
          } catch (err) {
            const message = err instanceof AppError ? err.message : 'The token is not valid';
            connection.log.info({ reason: message }, 'WebSocket connection refused: not authenticated');
            ctx.extra.socket.close(UNAUTHORIZED, `Unauthorized: ${message}`.slice(0, 120));
            return false;
          }
        },
        onSubscribe: (ctx, id, payload): ExecutionArgs | readonly GraphQLError[] => {
          const connection = connectionOf(ctx.extra.request);
          if (Object.keys(ctx.subscriptions).length > MAX_SUBSCRIPTIONS_PER_CONNECTION) {
            const message = `A connection holds at most ${MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions at once`;
            return [toGraphQLError(new AppError('QUERY_TOO_COMPLEX', message, { limit: MAX_SUBSCRIPTIONS_PER_CONNECTION }))];
          }
          const checked = checkOperation(backends.schema, payload, limits, limiter, connection.rateKey);
          if (!('document' in checked)) {
            connection.log.info({ subscriptionId: id, codes: checked.map((e) => e.extensions.code) }, 'subscription refused');
            return checked;
          }
          const { document, name, cost } = checked;
          // Not in the in-flight registry: a subscription is a stream, not an operation the drain waits for.
          const operation: Operation = { key: 0, requestId: connection.requestId, name, type: 'subscription', startedAt: Date.now(), sqlStatements: 0, errorCodes: [], cost };
          const build = () =>
            createContext(backends.root, operation, connection.log, backends.services, {
              principal: connection.principal,
              rateKey: connection.rateKey,
            });
          let current = build();
          // Resolvers see one context object; behind it, every event gets a fresh context (fresh loaders, a fresh
          // fork if it needs one), so a long-lived subscription neither grows an identity map nor serves a stale task.
          const contextValue = new Proxy({} as GraphQLContext, { get: (_target, key) => Reflect.get(current, key) as unknown });
          bindFeedScope(contextValue, { hub, beforeEach: () => (current = build()) });
          connection.log.info({ subscriptionId: id, operation: name, cost }, 'subscription started');
          return { schema: backends.schema, document, operationName: payload.operationName, variableValues: payload.variables, contextValue };
        },
        onNext: (_ctx, _id, _payload, _args, result) => (result.errors ? { ...result, errors: format(result.errors) } : undefined),
        onError: (ctx, id, _payload, errors) => {
          connectionOf(ctx.extra.request).log.warn({ subscriptionId: id, errors: errors.map((e) => e.message) }, 'subscription failed');
          return format(errors);
        },
        onComplete: (ctx, id) => connectionOf(ctx.extra.request).log.info({ subscriptionId: id }, 'subscription ended'),
        onClose: (ctx, code, reason) => connectionOf(ctx.extra.request).log.info({ code, reason }, 'WebSocket connection closed'),
      },
      this.wss,
    );
  }

  /**
   * Stops taking upgrades and closes every socket with 1001 Going Away; sockets whose clients do not answer the
   * close frame within a second are cut. Idempotent.
   */
  async close(): Promise<void> {
    this.closing = true;
    let timer: NodeJS.Timeout | undefined;
    const disposed = this.disposable ? Promise.resolve(this.disposable.dispose()) : new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await Promise.race([disposed.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, CLOSE_HANDSHAKE_MS)))]);
    clearTimeout(timer);
    this.terminate();
  }

  /** Cuts every socket at once (the emergency path). */
  terminate(): void {
    this.closing = true;
    for (const client of this.wss.clients) client.terminate();
  }
}
