/**
 * Helpers for webhook tests across server processes: spawning instances that deliver, creating webhooks through
 * GraphQL, receivers that count requests in flight per webhook, reading the change feed and the webhooks' leases
 * straight from PostgreSQL, and judging what arrived against the feed (order by first arrival, duplicates).
 */
import type pg from 'pg';
import { spawnServer, type ChildServer } from './child.js';
import { startReceiver, type ReceivedRequest, type WebhookReceiver } from './webhook-receiver.js';
import { EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WEBHOOK_HEADER, sign } from '../../src/webhooks/signature.js';

/** Settings every instance of these tests runs with: loopback receivers, quick retries, a short lease. */
export const INSTANCE_ENV: Readonly<Record<string, string>> = {
  DB_POOL_MIN: '0',
  LOG_LEVEL: 'info',
  SHUTDOWN_GRACE_MS: '10000',
  WEBHOOK_ALLOW_PRIVATE: 'true',
  WEBHOOK_LEASE_MS: '2000',
  WEBHOOK_RETRY_MIN_MS: '50',
  WEBHOOK_RETRY_MAX_MS: '500',
  WEBHOOK_TIMEOUT_MS: '15000',
};

export interface Instance {
  readonly name: string;
  readonly child: ChildServer;
  readonly url: string;
  /** The server's process id (lease owners carry it). */
  readonly pid: number;
}

/** Spawns `src/main.ts` with {@link INSTANCE_ENV}, `env` on top; resolves once it is ready. */
export async function startInstance(name: string, env: Record<string, string>): Promise<Instance> {
  const child = spawnServer({ ...INSTANCE_ENV, DB_APPLICATION_NAME: name, ...env });
  await child.ready();
  const [url, pid] = await Promise.all([child.url(), child.serverPid()]);
  return { name, child, url, pid };
}

/** SIGTERMs an instance still running and waits for its exit; returns the exit. */
export async function stopInstance(instance: Instance | undefined): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
  if (!instance) return undefined;
  const { proc } = instance.child;
  if (proc.exitCode === null && proc.signalCode === null) instance.child.kill('SIGTERM');
  return instance.child.exited;
}

export interface GqlResult<T> {
  status: number;
  body: { data?: T | null; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };
}

export async function gql<T>(url: string, query: string, variables: Record<string, unknown> = {}): Promise<GqlResult<T>> {
  const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  return { status: res.status, body: (await res.json()) as GqlResult<T>['body'] };
}

/** The data of an operation that must succeed. */
export async function gqlOk<T>(url: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const res = await gql<T>(url, query, variables);
  if (res.status !== 200 || !res.body.data || res.body.errors) throw new Error(`operation failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data;
}

export async function createTask(url: string, title: string): Promise<string> {
  const data = await gqlOk<{ createTask: { id: string } }>(url, 'mutation($t: String!) { createTask(input: { title: $t }) { id } }', { t: title });
  return data.createTask.id;
}

/**
 * `count` createTask calls spread over `urls`, `concurrency` at a time on each; `onAck` runs after each success.
 * With `tolerant`, a failed call is counted in `failed` and retried with a new task (an outage, a stopping instance).
 */
export async function burst(
  urls: readonly string[],
  count: number,
  { concurrency = 4, tolerant = false, onAck = () => undefined }: { concurrency?: number; tolerant?: boolean; onAck?: (acked: number) => void | Promise<void> } = {},
): Promise<{ acked: string[]; failed: number }> {
  const acked: string[] = [];
  let failed = 0;
  let started = 0;
  const worker = async (url: string) => {
    while (started < count) {
      started++;
      try {
        acked.push(await createTask(url, `event ${started}`));
        await onAck(acked.length);
      } catch (err) {
        if (!tolerant) throw err;
        failed++;
        started--;
        // A failing server answers at once: pace the retries a little rather than spin.
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  await Promise.all(urls.flatMap((url) => Array.from({ length: concurrency }, () => worker(url))));
  return { acked, failed };
}

/** How a target answers one request: a status and how long it holds the request first (ms, at least 1). */
export type Answer = { status: number; delayMs: number };

/**
 * A receiver for one webhook that answers as `answer` says and counts its requests in flight (from arrival to
 * the answer), so a test can assert that no two instances ever POST to one webhook at once.
 */
export interface Target {
  readonly receiver: WebhookReceiver;
  readonly requests: ReceivedRequest[];
  webhookId: string;
  secret: string;
  /** Most requests in flight at one moment so far. */
  readonly maxInFlight: number;
  readonly inFlight: number;
  answer: (request: Omit<ReceivedRequest, 'status'>, index: number) => Answer;
  /** The requests in flight now end for the count (their sender died: its sockets are closed). */
  forgetInFlight(): void;
  close(): Promise<void>;
}

export async function startTarget(answer: Target['answer'] = () => ({ status: 200, delayMs: 1 })): Promise<Target> {
  const receiver = await startReceiver();
  const pending = new Set<NodeJS.Timeout>();
  let inFlight = 0;
  let maxInFlight = 0;
  const target: Target = {
    receiver,
    requests: receiver.requests,
    webhookId: '',
    secret: '',
    get maxInFlight() {
      return maxInFlight;
    },
    get inFlight() {
      return inFlight;
    },
    answer,
    forgetInFlight() {
      for (const t of pending) clearTimeout(t);
      pending.clear();
      inFlight = 0;
    },
    close: () => receiver.close(),
  };
  receiver.respond((request, index) => {
    const { status, delayMs } = target.answer(request, index);
    // At least 1 ms, so this timer is queued before the receiver's own answer timer of the same delay and the
    // count drops just before the answer goes out (a sender's next request can only follow the answer).
    const delay = Math.max(1, delayMs);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const timer = setTimeout(() => {
      pending.delete(timer);
      inFlight--;
    }, delay);
    pending.add(timer);
    return { status, delayMs: delay };
  });
  return target;
}

/** Creates a webhook to `target` through `url`'s GraphQL API (every kind, every task) and records its id and secret. */
export async function createWebhook(url: string, target: Target, description = 'test'): Promise<string> {
  const data = await gqlOk<{ createWebhook: { webhook: { id: string }; secret: string } }>(
    url,
    'mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } secret } }',
    { input: { url: target.receiver.url, description } },
  );
  target.webhookId = data.createWebhook.webhook.id;
  target.secret = data.createWebhook.secret;
  return target.webhookId;
}

/** The event id of a request (the X-Webhook-Event header). */
export const eventOf = (r: Pick<ReceivedRequest, 'headers'>): string => String(r.headers[EVENT_HEADER]);

/** Event ids in order of their first arrival. */
export function firstArrivals(requests: readonly ReceivedRequest[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const r of requests) {
    const id = eventOf(r);
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(id);
  }
  return out;
}

/** Event ids that arrived more than once. */
export function duplicates(requests: readonly ReceivedRequest[]): string[] {
  const counts = new Map<string, number>();
  for (const r of requests) counts.set(eventOf(r), (counts.get(eventOf(r)) ?? 0) + 1);
  return [...counts].filter(([, n]) => n > 1).map(([id]) => id);
}

/** Requests not for this target's webhook, or whose signature does not verify under its secret. */
export function badRequests(target: Target): ReceivedRequest[] {
  return target.requests.filter((r) => {
    const ts = Number(r.headers[TIMESTAMP_HEADER]);
    const expected = `v1=${sign(target.secret, ts, r.body)}`;
    const signatures = String(r.headers[SIGNATURE_HEADER] ?? '').split(',').map((s) => s.trim());
    return r.method !== 'POST' || r.headers[WEBHOOK_HEADER] !== target.webhookId || !signatures.includes(expected);
  });
}

/** The highest event id now: every event after it (in id) is newer. Call it while nothing writes. */
export async function lastEventId(client: pg.Client): Promise<string> {
  const { rows } = await client.query<{ id: string }>('select coalesce(max(id), 0)::text as id from task_event');
  return rows[0]!.id;
}

/** Every event with an id above `afterId`, in change-feed order ((xid, id), as `Query.taskEvents` orders them). */
export async function feedAfter(client: pg.Client, afterId: string): Promise<string[]> {
  const { rows } = await client.query<{ id: string }>('select e.id::text as id from task_event e where e.id > $1::bigint order by e.xid, e.id', [afterId]);
  return rows.map((r) => r.id);
}

/** Each webhook's lease owner (null when none), by webhook id. */
export async function leaseOwners(client: pg.Client): Promise<Map<string, string | null>> {
  const { rows } = await client.query<{ id: string; owner: string | null }>('select id::text as id, lease_owner as owner from webhook');
  return new Map(rows.map((r) => [r.id, r.owner]));
}

/** Does the lease owner `owner` name the process `pid`? (An owner id carries its instance's pid.) */
export function ownedBy(owner: string | null | undefined, pid: number): boolean {
  return owner != null && new RegExp(`(^|\\D)${pid}(\\D|$)`).test(owner);
}

/** Which of `instances` holds the lease of `webhookId` now, if any. */
export async function holderOf<T extends { pid: number }>(client: pg.Client, webhookId: string, instances: readonly T[]): Promise<T | undefined> {
  const owner = (await leaseOwners(client)).get(webhookId);
  return instances.find((i) => ownedBy(owner, i.pid));
}

/** Removes every webhook (and, by cascade, its deliveries), so the next test starts with none. */
export async function deleteAllWebhooks(client: pg.Client): Promise<void> {
  await client.query('delete from webhook');
}
