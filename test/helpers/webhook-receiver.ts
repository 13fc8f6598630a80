/**
 * A real HTTP receiver on loopback for webhook tests: records every request (headers, raw body, arrival time) and
 * answers as the test says (status, delay), so tests wait for arrivals instead of sleeping.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The body exactly as sent (the signature covers these bytes). */
  body: string;
  /** Parsed JSON body (undefined when the body is not JSON). */
  json: Record<string, unknown> | undefined;
  receivedAt: number;
  /** The status this receiver answered with. */
  status: number;
}

/** How to answer a request: a status, optionally after a delay (ms). */
export type Responder = (request: Omit<ReceivedRequest, 'status'>, index: number) => { status: number; delayMs?: number } | number;

export interface WebhookReceiver {
  /** `http://127.0.0.1:<port>/hook` */
  readonly url: string;
  readonly port: number;
  /** Every request so far, in arrival order. */
  readonly requests: ReceivedRequest[];
  /** Answers with `responder` from now on (default: 200 at once). */
  respond(responder: Responder): void;
  /** Resolves once `predicate` holds over the requests so far (checked on every arrival); rejects after `timeoutMs`. */
  waitFor(predicate: (requests: ReceivedRequest[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
  /** Stops accepting connections (a receiver that is down); {@link start} brings it back on the same port. */
  pause(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a receiver on 127.0.0.1 (a free port, or `port`). */
export async function startReceiver(port = 0): Promise<WebhookReceiver> {
  const requests: ReceivedRequest[] = [];
  let responder: Responder = () => 200;
  const waiters = new Set<() => void>();
  let server: Server | undefined;

  const listen = (onPort: number) =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          let json: Record<string, unknown> | undefined;
          try {
            json = JSON.parse(body) as Record<string, unknown>;
          } catch {
            json = undefined;
          }
          const seen = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, json, receivedAt: Date.now() };
          const answer = responder(seen, requests.length);
          const { status, delayMs = 0 } = typeof answer === 'number' ? { status: answer } : answer;
          const finish = () => {
            if (res.destroyed) return;
            res.writeHead(status, { 'content-type': 'text/plain' }).end(String(status));
          };
          requests.push({ ...seen, status });
          for (const w of [...waiters]) w();
          if (delayMs > 0) setTimeout(finish, delayMs).unref();
          else finish();
        });
      });
      s.keepAliveTimeout = 1000;
      s.once('error', reject);
      s.listen(onPort, '127.0.0.1', () => resolve(s));
    });

  server = await listen(port);
  const boundPort = (server.address() as AddressInfo).port;
  const close = () =>
    new Promise<void>((resolve) => {
      const s = server;
      server = undefined;
      if (!s) return resolve();
      s.closeAllConnections();
      s.close(() => resolve());
    });
  return {
    url: `http://127.0.0.1:${boundPort}/hook`,
    port: boundPort,
    requests,
    respond(r) {
      responder = r;
    },
    waitFor(predicate, what, timeoutMs = 60_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!predicate(requests)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${requests.length} requests so far)`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    pause: close,
    async start() {
      if (!server) server = await listen(boundPort);
    },
    close,
  };
}
