/**
 * The Fastify server: request ids, `/healthz`, `/readyz`, `/metrics`, and `/graphql`, which answers 503
 * SERVICE_UNAVAILABLE until the app is ready and hands everything else to Apollo.
 *
 * Request hygiene: whatever is refused before a request reaches Apollo (a malformed HTTP message or URL, a body
 * that is not JSON, too large or nested too deep, a batch too long, a compressed body, a method a route does not
 * serve, a route that does not exist, a request that arrives while the server closes) is answered here in the GraphQL error shape
 * `{ "errors": [{ "message", "extensions": { "code" } }] }` with a message of our own. Fastify's wording and its
 * `FST_` codes never reach a client; anything unexpected is masked as INTERNAL_SERVER_ERROR and logged in full.
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { LogController, type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifyCors from '@fastify/cors';
import type { Logger } from '../logger.js';
import { AppError } from '../errors.js';
import { bodyLimitedServer, endRefusal } from './body-limit.js';
import { corsPluginOptions, corsResponseHeaders, type CorsConfig } from './cors.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;
const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * How deep arrays and objects may nest in a JSON request body. graphql-js coerces variables and the service
 * serializes JSON values recursively: a body of a few MB can nest a million levels and overflow the stack. No
 * operation of this API needs more than a few dozen levels (filters nest 5 deep, 2 JSON levels each).
 */
export const MAX_JSON_DEPTH = 128;
/** Operations in one batched request (ALLOW_BATCHED_REQUESTS): Apollo sets no bound of its own. */
export const MAX_BATCH_OPERATIONS = 100;

/** Methods a route may serve; another method on a path that has routes is 405 with `Allow`, not 404. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

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
  /** Readiness: ready and the database answers; `replicas` (when configured) is reported as is. */
  readiness(): Promise<{ ready: boolean; reason?: string; replicas?: unknown[] }>;
  /** Executes a GraphQL request (only called when accepting operations). */
  graphql(request: FastifyRequest, reply: FastifyReply): Promise<unknown>;
  /** Prometheus exposition of the app's metrics. */
  metrics(): Promise<{ contentType: string; body: string }>;
  /** A token `/metrics` requires as `Authorization: Bearer <token>`; none when undefined. */
  metricsToken: string | undefined;
  /** Cross-origin access for browser pages (CORS_ORIGINS, src/http/cors.ts); none when undefined. */
  cors?: CorsConfig | undefined;
}

/** Compares a presented credential with the expected one in constant time. */
function sameSecret(presented: string | undefined, expected: string): boolean {
  const a = Buffer.from(presented ?? '');
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Does this JSON text nest arrays and objects deeper than `max`? Skips strings (and the escapes in them). */
function nestsDeeper(text: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Jump to the closing quote (native indexOf: strings are most of a big body): one after an even run of \.
      for (;;) {
        i = text.indexOf('"', i + 1);
        if (i < 0) return false;
        let slashes = 0;
        while (text.charCodeAt(i - 1 - slashes) === 0x5c) slashes++;
        if (slashes % 2 === 0) break;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > max) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
  return false;
}

/** The one body shape of every error this layer answers, as GraphQL clients already parse it. */
function errorBody(code: string, message: string, extensions: Record<string, unknown> = {}): string {
  return JSON.stringify({ errors: [{ message, extensions: { ...extensions, code } }] });
}

/** The message of a 413, whether Content-Length declared the body too large or it streamed past the limit. */
function tooLargeMessage(maxBodyBytes: number): string {
  return `The request body is larger than MAX_BODY_BYTES (${maxBodyBytes} bytes)`;
}

function sendError(reply: FastifyReply, status: number, code: string, message: string, extensions?: Record<string, unknown>) {
  return reply.code(status).type(JSON_TYPE).send(errorBody(code, message, extensions));
}

/**
 * Our own words for what Fastify refuses before a handler runs, by its error code: its messages name its
 * internals, and a client needs to know what to change instead.
 */
function clientFault(code: string | undefined, maxBodyBytes: number): { status: number; message: string } | undefined {
  const faults: Record<string, [number, string]> = {
    FST_ERR_CTP_BODY_TOO_LARGE: [413, tooLargeMessage(maxBodyBytes)],
    // secure-json-parse also refuses prototype-poisoning keys; say so, or a client hunts for a syntax error.
    FST_ERR_CTP_INVALID_JSON_BODY: [400, 'The request body is not valid JSON (keys named __proto__ or constructor.prototype are refused too)'],
    JSON_TOO_DEEP: [400, `The request body nests JSON more than ${MAX_JSON_DEPTH} levels deep`],
    BATCH_TOO_LONG: [400, `A batched request holds at most ${MAX_BATCH_OPERATIONS} operations`],
    FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'The request body is empty: send a JSON object such as {"query":"{ __typename }"}'],
    FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'Unsupported or malformed Content-Type: send application/json'],
    FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'The request body does not match its Content-Length header'],
    FST_ERR_BAD_URL: [400, 'The URL is malformed (invalid percent-encoding)'],
  };
  const fault = code === undefined ? undefined : faults[code];
  return fault && { status: fault[0], message: fault[1] };
}

/**
 * Answers what Node's HTTP parser rejects before Fastify sees a request (a malformed request line or header,
 * headers or a URL over Node's limit, a request that arrives too slowly). Fastify's default writes its own body.
 */
function clientErrorHandler(log: Logger) {
  const answers: Record<string, [number, string]> = {
    HPE_HEADER_OVERFLOW: [431, 'The request headers or URL are too large: send the operation in a POST body'],
    ERR_HTTP_REQUEST_TIMEOUT: [408, 'The request did not arrive in time'],
  };
  return (err: NodeJS.ErrnoException, socket: Socket): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    // A client half-closed during a refused upload: its 413 is written, so end that instead of writing a 400.
    if (endRefusal(socket)) return;
    const [status, message] = answers[err.code ?? ''] ?? [400, 'Malformed HTTP request'];
    log.debug({ code: err.code }, 'malformed HTTP request refused');
    const body = errorBody('BAD_REQUEST', message);
    if (socket.writable) {
      const head = `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: ${JSON_TYPE}\r\n`;
      socket.write(`${head}content-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${randomUUID()}\r\n\r\n${body}`);
    }
    socket.destroy(err);
  };
}

/** Builds the Fastify instance with every route registered (Fastify needs routes before `listen`). */
export function createHttpServer(log: Logger, maxBodyBytes: number, hooks: HttpHooks) {
  const app = Fastify({
    loggerInstance: log,
    // Operations are logged by the GraphQL layer; one line per request here would double the volume.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    genReqId: requestIdOf,
    bodyLimit: maxBodyBytes,
    // Refuses a declared Content-Length over the limit before reading, so the 413 survives (see body-limit.ts);
    // a chunked body is still cut by bodyLimit as it streams.
    serverFactory: bodyLimitedServer({
      maxBodyBytes,
      log,
      requestId: requestIdOf,
      body: errorBody('BAD_REQUEST', tooLargeMessage(maxBodyBytes)),
      headers: (req) => corsResponseHeaders(hooks.cors, req),
    }),
    // On close: idle keep-alive sockets are closed at once, requests in flight are waited for.
    forceCloseConnections: 'idle',
    // Requests that arrive while closing are refused by our onRequest hook instead, in our error shape.
    return503OnClosing: false,
    clientErrorHandler: clientErrorHandler(log),
    frameworkErrors: (err, req, reply) => {
      // Raised before routing, so no onRequest hook has set the request id header yet.
      void reply.header('x-request-id', req.id);
      const fault = clientFault(err.code, maxBodyBytes);
      void sendError(reply, fault?.status ?? 400, 'BAD_REQUEST', fault?.message ?? 'Bad request');
    },
  });

  // First: every response carries the request id, a CORS preflight answered by the plugin's hook too.
  app.addHook('onRequest', async (req, reply) => void reply.header('x-request-id', req.id));
  // Registered before our other hooks, so that its headers are on our refusals too (a 503 while closing, a 415),
  // which a page on another origin can then read. Without CORS_ORIGINS nothing is registered: OPTIONS stays a 405.
  if (hooks.cors) void app.register(fastifyCors, corsPluginOptions(hooks.cors));

  let closing = false;
  app.addHook('preClose', async () => void (closing = true));

  app.addHook('onRequest', async (req, reply) => {
    if (closing) {
      // A request on a keep-alive connection after close() began: in-flight ones finish, new ones go elsewhere.
      void reply.header('connection', 'close').header('retry-after', '1');
      const message = 'Service unavailable: the server is shutting down. Try again shortly.';
      return sendError(reply, 503, 'SERVICE_UNAVAILABLE', message, { reason: 'SHUTTING_DOWN' });
    }
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
      // Nothing here decompresses: without this, a gzipped body would be reported as invalid JSON.
      return sendError(reply, 415, 'BAD_REQUEST', 'Compressed request bodies are not supported: send the body without Content-Encoding');
    }
  });
  app.addHook('onSend', async (_req, reply) => {
    if (hooks.draining()) void reply.header('connection', 'close');
  });

  // Fastify's JSON parser (secure-json-parse: refuses prototype-poisoning keys), behind a nesting limit.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  const refuse = (code: string) => Object.assign(new Error(code), { code, statusCode: 400 });
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = body as string;
    if (text.length > MAX_JSON_DEPTH && nestsDeeper(text, MAX_JSON_DEPTH)) return done(refuse('JSON_TOO_DEEP'), undefined);
    void parseJson(req, text, (err, parsed) => {
      if (!err && Array.isArray(parsed) && parsed.length > MAX_BATCH_OPERATIONS) return done(refuse('BATCH_TOO_LONG'), undefined);
      done(err, parsed);
    });
  });
  // Apollo judges other content types itself (400 for a POST that is not JSON); hand it the raw text.
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof AppError && err.code !== 'INTERNAL_SERVER_ERROR') {
      // A deliberate error raised before Apollo ran (by a hook) keeps its code, HTTP status and headers.
      for (const [name, value] of err.http?.headers ?? []) void reply.header(name, value);
      return sendError(reply, err.http?.status ?? 400, err.code, err.message, err.extensions);
    }
    const fault = clientFault(err.code, maxBodyBytes);
    const status = fault?.status ?? err.statusCode ?? 500;
    if (status < 400 || status >= 500) {
      req.log.error({ err }, 'request failed');
      return sendError(reply, 500, 'INTERNAL_SERVER_ERROR', 'Internal server error');
    }
    req.log.debug({ code: err.code, status }, 'request refused');
    return sendError(reply, status, 'BAD_REQUEST', fault?.message ?? STATUS_CODES[status] ?? 'Bad request');
  });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '/';
    // Asked of the router, so routes registered elsewhere (the playground) count too.
    const allow = METHODS.filter((method) => app.hasRoute({ method, url: path })).join(', ');
    if (allow) {
      void reply.header('allow', allow);
      return sendError(reply, 405, 'BAD_REQUEST', `Method ${req.method} is not allowed on ${path}: use ${allow}`);
    }
    // The path is echoed to help a client spot a typo, but bounded: it is the client's own text.
    const shown = path.length > 100 ? `${path.slice(0, 100)}...` : path;
    return sendError(reply, 404, 'NOT_FOUND', `No route ${req.method} ${shown}: the GraphQL endpoint is /graphql`);
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const { ready, reason, replicas } = await hooks.readiness();
    const body = ready ? { status: 'ready' } : { status: 'not ready', reason };
    return reply.code(ready ? 200 : 503).send(replicas ? { ...body, replicas } : body);
  });

  app.get('/metrics', async (req, reply) => {
    if (hooks.metricsToken !== undefined && !sameSecret(req.headers.authorization, `Bearer ${hooks.metricsToken}`)) {
      return sendError(reply, 401, 'UNAUTHENTICATED', 'GET /metrics needs Authorization: Bearer <METRICS_TOKEN>');
    }
    const { contentType, body } = await hooks.metrics();
    return reply.type(contentType).send(body);
  });

  const graphql = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!hooks.acceptingOperations()) {
      void reply.header('retry-after', '1');
      const message = `Service unavailable: ${hooks.unavailableReason()}. Try again shortly.`;
      return sendError(reply, 503, 'SERVICE_UNAVAILABLE', message, { reason: hooks.unavailableCode() });
    }
    return hooks.graphql(req, reply);
  };
  // No implicit HEAD: Apollo serves GET and POST only, so HEAD is a 405 like any other method.
  app.get('/graphql', { exposeHeadRoute: false }, graphql);
  app.post('/graphql', graphql);
  return app;
}
