/**
 * Refuses a request whose Content-Length is over MAX_BODY_BYTES before Fastify or anyone reads its body, in a way
 * every client sees the 413.
 *
 * Left to Node, a response that says `connection: close` while the upload is unread ends in a reset: Node destroys
 * the socket and the kernel answers the unread bytes with RST, so a client that writes its whole body before it
 * reads gets EPIPE and never the answer. And with `Expect: 100-continue` Node sends `100 Continue` before anyone
 * has looked at the length. Here such a request gets its whole 413 at once (no `100 Continue`), the upload is read
 * and thrown away up to a bound, and only then is the response ended, so Node closes a connection with nothing
 * left unread. Bodies without Content-Length (chunked) are still cut by Fastify's `bodyLimit` as they stream.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyServerFactory } from 'fastify';
import type { Logger } from '../logger.js';

/** The largest refused upload read and thrown away (a larger one is cut at once): it costs bandwidth, not memory. */
export const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
/** A refused upload that pauses this long is given up (as Apache's lingering close): the client has stopped sending. */
export const DRAIN_IDLE_MS = 2_000;
/** However steadily it arrives, a refused upload is read this long at most (Apache's lingering close allows 30 s). */
export const DRAIN_MAX_MS = 30_000;

/** What a refusal says. */
export interface BodyLimit {
  maxBodyBytes: number;
  log: Logger;
  /** The request id a refusal echoes as `x-request-id` (the one Fastify would give the request). */
  requestId(req: IncomingMessage): string;
  /** The JSON body of the 413, in the server's error shape. */
  body: string;
  /** Further headers of the 413 (CORS, so a page on another origin can read it). */
  headers?(req: IncomingMessage): Record<string, string>;
}

/** Sockets whose refused upload is being thrown away, each with the call that ends its response. */
const refusals = new WeakMap<Socket, () => void>();

/**
 * For the server's `clientError` handler: if `socket` carries a refused upload, ends that refusal (its 413 is
 * already written) and returns true, so the handler writes no second response. Node's parser reports an error
 * when a client half-closes before its declared body is complete, as a client that read the 413 may.
 */
export function endRefusal(socket: Socket): boolean {
  const end = refusals.get(socket);
  end?.();
  return end !== undefined;
}

/** The declared length of a body, when there is one and no Transfer-Encoding overrides it. */
function declaredLength(req: IncomingMessage): number | undefined {
  const declared = req.headers['content-length'];
  return declared === undefined || req.headers['transfer-encoding'] !== undefined ? undefined : Number(declared);
}

/** Answers 413 at once, throws away the upload within the bounds above, then ends the response (Node closes). */
function refuse(req: IncomingMessage, res: ServerResponse, limit: BodyLimit, declared: number): void {
  const requestId = limit.requestId(req);
  limit.log.debug({ requestId, contentLength: declared }, 'request refused: Content-Length over MAX_BODY_BYTES');
  res.writeHead(413, {
    ...limit.headers?.(req),
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(limit.body),
    connection: 'close',
    'x-request-id': requestId,
  });
  res.write(limit.body);
  // Too big to drain: end now (Node closes the connection). Otherwise Node's parser hands `req` no more than the
  // declared length, which bounds the bytes drained.
  if (declared > DRAIN_MAX_BYTES) return void res.end();
  const socket = req.socket;
  const discard = () => idle.refresh();
  const end = () => {
    clearTimeout(idle);
    clearTimeout(deadline);
    req.off('data', discard);
    if (refusals.get(socket) === end) refusals.delete(socket);
    if (!res.writableEnded && !res.destroyed) res.end();
  };
  const idle = setTimeout(end, DRAIN_IDLE_MS);
  const deadline = setTimeout(end, DRAIN_MAX_MS);
  refusals.set(socket, end);
  // A 'data' listener makes `req` flow: each chunk is dropped once the listeners ran.
  req.on('data', discard);
  req.once('end', end);
  req.once('close', end);
}

/**
 * A Fastify `serverFactory`: a node:http server configured as Fastify configures its own, that refuses a request
 * whose Content-Length is over `maxBodyBytes` before Fastify sees it, and sends `100 Continue` only to a request it
 * hands on. Upgrades and `clientError` are the server's as usual.
 */
export function bodyLimitedServer(limit: BodyLimit): FastifyServerFactory<Server> {
  return (handler, opts) => {
    const tooLarge = (req: IncomingMessage) => {
      const declared = declaredLength(req);
      return declared !== undefined && declared > limit.maxBodyBytes ? declared : undefined;
    };
    const server = createServer((req, res) => {
      const declared = tooLarge(req);
      if (declared === undefined) handler(req, res);
      else refuse(req, res, limit, declared);
    });
    // Listening replaces Node's automatic `100 Continue`: a request that will be refused is never invited to send.
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      const declared = tooLarge(req);
      if (declared !== undefined) return refuse(req, res, limit, declared);
      res.writeContinue();
      handler(req, res);
    });
    // What Fastify sets on the server it creates itself (lib/server.js), from its normalized options.
    const option = (name: string) => Number(opts[name] ?? 0);
    server.keepAliveTimeout = option('keepAliveTimeout');
    server.requestTimeout = option('requestTimeout');
    server.setTimeout(option('connectionTimeout'));
    if (option('maxRequestsPerSocket') > 0) server.maxRequestsPerSocket = option('maxRequestsPerSocket');
    return server;
  };
}
