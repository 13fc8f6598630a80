/**
 * One delivery attempt: a signed POST with node:http(s), not fetch, so that redirects are never followed and every
 * address a name resolves to is checked before connecting (src/webhooks/url-policy.ts). The whole attempt (connect,
 * request, response head) must finish within WEBHOOK_TIMEOUT_MS; the socket is destroyed otherwise.
 */
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { addressRefusal, checkedLookup, hostOf, isPrivateAddress, UrlPolicyError } from './url-policy.js';
import { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signatureHeader, TIMESTAMP_HEADER, WEBHOOK_HEADER } from './signature.js';

/** What became of an attempt; the `outcome` label of `webhook_deliveries_total`. */
export type AttemptOutcome = 'delivered' | 'http_error' | 'timeout' | 'network_error' | 'refused';

export interface AttemptResult {
  outcome: AttemptOutcome;
  /** The answer's status; null without an answer. */
  statusCode: number | null;
  /** From the start of the attempt to the answer's head (or the failure). */
  latencyMs: number;
  /** Why it failed; undefined when delivered. */
  error?: string;
  /** Cut by {@link WebhookSender.abortAll} (the emergency path): not the endpoint's failure, and not recorded. */
  aborted?: boolean;
}

/** One request to send. */
export interface Attempt {
  url: string;
  webhookId: string;
  deliveryId: string;
  eventId: string;
  body: string;
  /** The current secret first, then the previous one while it still signs. */
  secrets: readonly string[];
}

export const USER_AGENT = 'task-tracker-webhooks';
/** How much of a failed answer's body is kept for `lastError`. */
const ERROR_BODY_BYTES = 2048;
/** A 2xx answer's body is read and dropped up to this much (to keep the connection); past it the socket is cut. */
const DRAIN_BODY_BYTES = 64 * 1024;

/**
 * Sends attempts for one app: keep-alive agents of its own (closed by {@link close}) and the set of requests in
 * flight, which the emergency path can cut.
 */
export class WebhookSender {
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 8 });
  private readonly inFlight = new Set<http.ClientRequest>();
  private readonly aborted = new WeakSet<http.ClientRequest>();

  constructor(private readonly options: { allowPrivate: boolean; timeoutMs: number }) {}

  /** Requests on the wire now. */
  get active(): number {
    return this.inFlight.size;
  }

  /** Sends one attempt; never throws (every failure is a result). */
  send(attempt: Attempt): Promise<AttemptResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const fail = (outcome: AttemptOutcome, error: string, statusCode: number | null = null): AttemptResult => ({ outcome, statusCode, latencyMs: elapsed(), error });
    let url: URL;
    try {
      url = new URL(attempt.url);
    } catch {
      return Promise.resolve(fail('refused', 'the url is not an absolute URL'));
    }
    const plainHttp = url.protocol === 'http:';
    if (!plainHttp && url.protocol !== 'https:') return Promise.resolve(fail('refused', `the url's scheme ${url.protocol} is not http(s)`));
    // Node does not call `lookup` for an IP literal: check it here.
    const host = hostOf(url);
    if (isIP(host)) {
      const refusal = addressRefusal(host, this.options.allowPrivate) ?? (plainHttp && !isPrivateAddress(host) ? `${host} is public and the url is http, not https` : undefined);
      if (refusal) return Promise.resolve(fail('refused', `refused: ${refusal}`));
    }
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(attempt.body)),
      'user-agent': USER_AGENT,
      [WEBHOOK_HEADER]: attempt.webhookId,
      [DELIVERY_HEADER]: attempt.deliveryId,
      [EVENT_HEADER]: attempt.eventId,
      [TIMESTAMP_HEADER]: String(timestamp),
      [SIGNATURE_HEADER]: signatureHeader(attempt.secrets, timestamp, attempt.body),
    };
    return new Promise<AttemptResult>((resolve) => {
      let settled = false;
      let timedOut = false;
      const finish = (result: AttemptResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.inFlight.delete(req);
        resolve(result);
      };
      const request = plainHttp ? http.request : https.request;
      const req = request(url, {
        method: 'POST',
        headers,
        agent: plainHttp ? this.httpAgent : this.httpsAgent,
        lookup: checkedLookup(this.options.allowPrivate, plainHttp),
      });
      this.inFlight.add(req);
      const timer = setTimeout(() => {
        timedOut = true;
        req.destroy(new Error(`no answer within WEBHOOK_TIMEOUT_MS (${this.options.timeoutMs} ms)`));
      }, this.options.timeoutMs);
      req.on('error', (err: Error) => {
        if (this.aborted.has(req)) return finish({ ...fail('network_error', err.message), aborted: true });
        if (timedOut) return finish(fail('timeout', err.message));
        if (err instanceof UrlPolicyError) return finish(fail('refused', `refused: ${err.message}`));
        const code = (err as NodeJS.ErrnoException).code;
        finish(fail('network_error', code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message || String(code)));
      });
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          // Delivered: the body is read and dropped (a keep-alive socket must be drained), within a bound.
          let drained = 0;
          res.on('data', (chunk: Buffer) => {
            drained += chunk.length;
            if (drained > DRAIN_BODY_BYTES) res.destroy();
          });
          res.on('error', () => undefined);
          return finish({ outcome: 'delivered', statusCode: status, latencyMs: elapsed() });
        }
        // A failure: keep the start of the body for the record, then cut the rest.
        const chunks: Buffer[] = [];
        let kept = 0;
        const done = () => {
          const text = Buffer.concat(chunks).toString('utf8').slice(0, ERROR_BODY_BYTES).trim();
          const redirect = status >= 300 && status < 400 ? `: redirects are not followed${res.headers.location ? ` (location ${res.headers.location.slice(0, 200)})` : ''}` : '';
          finish(fail('http_error', `HTTP ${status}${redirect}${text ? `: ${text}` : ''}`, status));
        };
        res.on('data', (chunk: Buffer) => {
          if (kept < ERROR_BODY_BYTES) chunks.push(chunk);
          kept += chunk.length;
          if (kept >= ERROR_BODY_BYTES) {
            res.destroy();
            done();
          }
        });
        res.on('end', done);
        res.on('error', done);
        res.on('close', done);
      });
      req.end(attempt.body);
    });
  }

  /** Cuts every request in flight (the emergency path): each resolves as a network error. */
  abortAll(): void {
    for (const req of this.inFlight) {
      this.aborted.add(req);
      req.destroy(new Error('the server is shutting down'));
    }
  }

  /** Closes the keep-alive sockets. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
