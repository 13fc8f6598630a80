/**
 * The Fastify server: request ids, `/healthz`, `/readyz`, and `/graphql`, which answers 503 SERVICE_UNAVAILABLE
 * until the app is ready and hands everything else to Apollo.
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Fastify, { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from '../logger.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** Echo a well-formed incoming `x-request-id`, else make one. */
export function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/** What the HTTP layer needs from the app. */
export interface HttpHooks {
  /** Is the app ready to execute GraphQL (booted, not draining)? */
  acceptingOperations(): boolean;
  /** Is the server shutting down? Responses then close their connection, so keep-alive sockets do not hold the drain. */
  draining(): boolean;
  /** Why operations are refused right now (booting, draining...). */
  unavailableReason(): string;
  /** The same as a code for `extensions.reason`: STARTING or SHUTTING_DOWN. */
  unavailableCode(): string;
  /** Readiness: ready and the database answers. */
  readiness(): Promise<{ ready: boolean; reason?: string }>;
  /** Executes a GraphQL request (only called when accepting operations). */
  graphql(request: FastifyRequest, reply: FastifyReply): Promise<unknown>;
  /** Prometheus exposition of the app's metrics. */
  metrics(): Promise<{ contentType: string; body: string }>;
  /** A token `/metrics` requires as `Authorization: Bearer <token>`; none when undefined. */
  metricsToken: string | undefined;
}

/** Compares a presented credential with the expected one in constant time. */
function sameSecret(presented: string | undefined, expected: string): boolean {
  const a = Buffer.from(presented ?? '');
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function graphQLError(reply: FastifyReply, status: number, code: string, message: string) {
  return reply.code(status).type('application/json; charset=utf-8').send({ errors: [{ message, extensions: { code } }] });
}

/** Builds the Fastify instance with every route registered (Fastify needs routes before `listen`). */
export function createHttpServer(log: Logger, maxBodyBytes: number, hooks: HttpHooks) {
  const app = Fastify({
    loggerInstance: log,
    // Operations are logged by the GraphQL layer; one line per request here would double the volume.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    genReqId: requestIdOf,
    bodyLimit: maxBodyBytes,
    // On close: idle keep-alive sockets are closed at once, requests in flight are waited for.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  });

  app.addHook('onRequest', async (req, reply) => {
    void reply.header('x-request-id', req.id);
  });
  app.addHook('onSend', async (_req, reply) => {
    if (hooks.draining()) void reply.header('connection', 'close');
  });

  // Apollo judges content types itself (400 for a POST that is not JSON); hand it the raw text.
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: { statusCode?: number; message: string; code?: string }, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) {
      req.log.error({ err }, 'request failed');
      return graphQLError(reply, 500, 'INTERNAL_SERVER_ERROR', 'Internal server error');
    }
    return graphQLError(reply, status, 'BAD_REQUEST', err.message);
  });

  app.setNotFoundHandler((req, reply) => graphQLError(reply, 404, 'NOT_FOUND', `No route ${req.method} ${req.url.split('?')[0]}`));

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const { ready, reason } = await hooks.readiness();
    return reply.code(ready ? 200 : 503).send(ready ? { status: 'ready' } : { status: 'not ready', reason });
  });

  app.get('/metrics', async (req, reply) => {
    if (hooks.metricsToken !== undefined && !sameSecret(req.headers.authorization, `Bearer ${hooks.metricsToken}`)) {
      return graphQLError(reply, 401, 'UNAUTHENTICATED', 'GET /metrics needs Authorization: Bearer <METRICS_TOKEN>');
    }
    const { contentType, body } = await hooks.metrics();
    return reply.type(contentType).send(body);
  });

  const graphql = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!hooks.acceptingOperations()) {
      void reply.header('retry-after', '1');
      const body = { errors: [{ message: `Service unavailable: ${hooks.unavailableReason()}. Try again shortly.`, extensions: { code: 'SERVICE_UNAVAILABLE', reason: hooks.unavailableCode() } }] };
      return reply.code(503).type('application/json; charset=utf-8').send(body);
    }
    return hooks.graphql(req, reply);
  };
  app.get('/graphql', graphql);
  app.post('/graphql', graphql);
  return app;
}
