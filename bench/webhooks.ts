/**
 * Webhook deliveries: how many the server sustains to a local receiver, and how long an event takes from its
 * commit to the receiver. One server (its production build, as `npm run start:prod` runs it, in a child process)
 * on a fresh database; a loopback receiver in this process answering 200 at once; for each webhook count (1, 10),
 * `createTask` at a steady rate, then flat out, each phase followed by waiting for the backlog to drain.
 *
 *   npm run bench:webhooks [-- --webhooks 1,10 --rate 50 --seconds 10 --flat-seconds 5 --concurrency 16 --pool 10 --no-build]
 *
 * Commit-to-receipt latency is measured two ways, which bracket the commit: from the arrival of the mutation's
 * HTTP response here (after the commit: a lower bound on the true latency; negative when the POST beats the
 * response) and from the event's `at` (written in the transaction, before the commit: an upper bound). Receipt is
 * the receiver's arrival time of the POST (its body read). The database comes from DATABASE_URL (a fresh database
 * on that server) or an embedded PostgreSQL (bench/database.ts).
 */
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { provisionDatabase } from './database.js';
import { watchForeignLoad, type MachineLoad } from './machine.js';
import { ROOT, startOurServer, type ChildServer } from './servers.js';

const { values } = parseArgs({
  options: {
    webhooks: { type: 'string', default: '1,10' },
    rate: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '10' },
    'flat-seconds': { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '16' },
    'drain-seconds': { type: 'string', default: '30' },
    pool: { type: 'string', default: '10' },
    'no-build': { type: 'boolean', default: false },
  },
});
const webhookCounts = values.webhooks.split(',').map(Number);
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const flatSeconds = Number(values['flat-seconds']);
const concurrency = Number(values.concurrency);
const drainMs = Number(values['drain-seconds']) * 1000;
const poolMax = Number(values.pool);

/** Milliseconds since the epoch with sub-millisecond resolution (comparable with the event's `at`). */
const now = () => performance.timeOrigin + performance.now();

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

function latencySummary(samples: number[]): string {
  const s = [...samples].sort((x, y) => x - y);
  const f = (n: number) => n.toFixed(1);
  return `p50 ${f(percentile(s, 50))} ms, p99 ${f(percentile(s, 99))} ms, max ${f(s.at(-1) ?? Number.NaN)} ms (n=${s.length})`;
}

/** The loopback receiver: answers 200 at once and records each (webhook, event)'s first arrival. */
interface Receiver {
  url: string;
  /** webhook id → event id → first arrival (epoch ms). */
  arrivals: Map<string, Map<string, number>>;
  requests: number;
  duplicates: number;
  /** Called after every request (the bench waits on it). */
  onRequest: () => void;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const receiver: Receiver = { url: '', arrivals: new Map(), requests: 0, duplicates: 0, onRequest: () => undefined, close: async () => undefined };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const at = now();
      const webhook = String(req.headers['x-webhook-id']);
      const event = String(req.headers['x-webhook-event']);
      receiver.requests++;
      let events = receiver.arrivals.get(webhook);
      if (!events) receiver.arrivals.set(webhook, (events = new Map<string, number>()));
      if (events.has(event)) receiver.duplicates++;
      else events.set(event, at);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      receiver.onRequest();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  receiver.close = () => new Promise((resolve) => (server.closeAllConnections(), server.close(() => resolve())));
  return receiver;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** POSTs one GraphQL operation; resolves with its data (throws on errors). */
function gql<T>(url: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const text = JSON.stringify({ query, variables });
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/graphql`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data?: T; errors?: unknown[] };
        if (res.statusCode !== 200 || body.errors || !body.data) reject(new Error(`${res.statusCode}: ${JSON.stringify(body).slice(0, 500)}`));
        else resolve(body.data);
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}

/** createTask; returns the task id and when its response arrived. */
async function createTask(url: string, i: number): Promise<{ id: string; ackedAt: number }> {
  const data = await gql<{ createTask: { id: string } }>(url, 'mutation($t: String!) { createTask(input: { title: $t }) { id } }', { t: `bench ${i}` });
  return { id: data.createTask.id, ackedAt: now() };
}

interface Written {
  /** task id → response arrival (epoch ms). */
  acked: Map<string, number>;
  startedAt: number;
  endedAt: number;
}

/** `rate` createTask per second for `secs` seconds, evenly spaced (open loop: a slow answer does not delay the next). */
async function writePaced(url: string, ratePerSec: number, secs: number): Promise<Written> {
  const acked = new Map<string, number>();
  const total = Math.round(ratePerSec * secs);
  const startedAt = now();
  const inFlight: Array<Promise<void>> = [];
  for (let i = 0; i < total; i++) {
    const wait = startedAt + (i * 1000) / ratePerSec - now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    inFlight.push(createTask(url, i).then(({ id, ackedAt }) => void acked.set(id, ackedAt)));
  }
  await Promise.all(inFlight);
  return { acked, startedAt, endedAt: now() };
}

/** createTask as fast as `conc` loops go, for `secs` seconds. */
async function writeFlatOut(url: string, conc: number, secs: number): Promise<Written> {
  const acked = new Map<string, number>();
  const startedAt = now();
  const until = startedAt + secs * 1000;
  let i = 0;
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (now() < until) {
        const { id, ackedAt } = await createTask(url, i++);
        acked.set(id, ackedAt);
      }
    }),
  );
  return { acked, startedAt, endedAt: now() };
}

interface PhaseResult {
  label: string;
  events: number;
  writeRate: number;
  /** Deliveries received per second while the writes ran. */
  deliveryRateWriting: number;
  /** Deliveries still due when the writes stopped (events × webhooks not yet received). */
  backlogAtStop: number;
  /** From the writes' end until every delivery arrived (undefined: not within the drain timeout). */
  drainMs: number | undefined;
  /** Deliveries per second after the writes stopped, until drained or the drain timeout: the worker alone. */
  drainRate: number;
  /** Deliveries per second from the first write to the last receipt. */
  deliveryRateOverall: number;
  backlogAtEnd: number;
  fromResponse: number[];
  fromAt: number[];
  load: MachineLoad | undefined;
}

async function main(): Promise<void> {
  const log = (line: string) => console.log(line);
  const db = await provisionDatabase({ keep: false, log });
  const observer = new pg.Client({ connectionString: db.url });
  const receiver = await startReceiver();
  let server: ChildServer | undefined;
  try {
    if (!values['no-build']) {
      log('building our server (npm run build) ...');
      execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
    }
    // startOurServer passes this process's environment on: the receiver is on loopback, so private addresses
    // must be allowed; everything else stays at its default.
    process.env.WEBHOOK_ALLOW_PRIVATE = 'true';
    server = await startOurServer({ databaseUrl: db.url, logLevel: 'warn', poolMax });
    const url = server.url;
    await observer.connect();
    const dbName = new URL(db.url).pathname.slice(1);

    /** Deliveries of `eventIds` to `webhookIds` not received yet. */
    const backlogOf = (webhookIds: readonly string[], eventIds: readonly string[]) =>
      webhookIds.reduce((sum, w) => sum + eventIds.filter((e) => !receiver.arrivals.get(w)?.has(e)).length, 0);
    /** Resolves true once every event of `eventIds` reached every webhook, false after `timeoutMs`. */
    const waitDrained = (webhookIds: readonly string[], eventIds: readonly string[], timeoutMs: number) =>
      new Promise<boolean>((resolve) => {
        const check = () => {
          const due = webhookIds.reduce((sum, w) => sum + eventIds.filter((e) => !receiver.arrivals.get(w)?.has(e)).length, 0);
          if (due === 0) finish(true);
        };
        let pendingCheck = false;
        const timer = setTimeout(() => finish(false), timeoutMs);
        const finish = (ok: boolean) => {
          clearTimeout(timer);
          receiver.onRequest = () => undefined;
          resolve(ok);
        };
        receiver.onRequest = () => {
          // Re-counting on every request would be quadratic: re-count at most every 20 ms.
          if (pendingCheck) return;
          pendingCheck = true;
          setTimeout(() => ((pendingCheck = false), check()), 20);
        };
        check();
      });

    /** Event ids and `at` (epoch ms) of `tasks`' events, in feed order. */
    const eventsOf = async (taskIds: string[]) => {
      const { rows } = await observer.query<{ id: string; task_id: string; at: number }>(
        'select e.id::text as id, e.task_id::text as task_id, extract(epoch from e.at) * 1000 as at from task_event e where e.task_id = any($1::uuid[]) order by e.xid, e.id',
        [taskIds],
      );
      return rows.map((r) => ({ id: r.id, taskId: r.task_id, at: Number(r.at) }));
    };

    const results: Array<{ webhooks: number; phases: PhaseResult[] }> = [];
    let created: string[] = [];
    for (const count of webhookCounts) {
      for (const id of created) await gql(url, 'mutation($id: ID!) { deleteWebhook(id: $id) }', { id });
      created = [];
      for (let i = 0; i < count; i++) {
        const data = await gql<{ createWebhook: { webhook: { id: string } } }>(url, 'mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } } }', {
          input: { url: `${receiver.url}/${i}`, description: `bench ${i}` },
        });
        created.push(data.createWebhook.webhook.id);
      }
      // Warm-up: until a few events reach every webhook, the worker has claimed them all and the sockets are open.
      const warm = await writePaced(url, 20, 1);
      if (!(await waitDrained(created, (await eventsOf([...warm.acked.keys()])).map((e) => e.id), 60_000))) throw new Error('the warm-up events did not reach every webhook within 60 s');

      const phases: PhaseResult[] = [];
      for (const [label, write] of [
        [`steady ${rate} events/s for ${seconds} s`, () => writePaced(url, rate, seconds)],
        [`flat out (${concurrency} concurrent createTask) for ${flatSeconds} s`, () => writeFlatOut(url, concurrency, flatSeconds)],
      ] as const) {
        const stopWatch = watchForeignLoad([server.pid, process.pid], dbName);
        const receivedBefore = receiver.requests;
        const written = await write();
        const receivedWriting = receiver.requests - receivedBefore;
        const events = await eventsOf([...written.acked.keys()]);
        const eventIds = events.map((e) => e.id);
        const backlogAtStop = backlogOf(created, eventIds);
        const receivedAtStop = receiver.requests;
        const drained = await waitDrained(created, eventIds, drainMs);
        const drainEnd = now();
        const drainedCount = receiver.requests - receivedAtStop;
        const load = stopWatch();
        const backlogAtEnd = backlogOf(created, eventIds);
        const fromResponse: number[] = [];
        const fromAt: number[] = [];
        let lastReceipt = written.startedAt;
        for (const e of events) {
          const ackedAt = written.acked.get(e.taskId)!;
          for (const w of created) {
            const at = receiver.arrivals.get(w)?.get(e.id);
            if (at === undefined) continue;
            fromResponse.push(at - ackedAt);
            fromAt.push(at - e.at);
            lastReceipt = Math.max(lastReceipt, at);
          }
        }
        const delivered = fromResponse.length;
        phases.push({
          label,
          events: events.length,
          writeRate: written.acked.size / ((written.endedAt - written.startedAt) / 1000),
          deliveryRateWriting: receivedWriting / ((written.endedAt - written.startedAt) / 1000),
          backlogAtStop,
          drainMs: drained ? drainEnd - written.endedAt : undefined,
          drainRate: drainedCount / ((drainEnd - written.endedAt) / 1000),
          deliveryRateOverall: delivered / ((lastReceipt - written.startedAt) / 1000),
          backlogAtEnd,
          fromResponse,
          fromAt,
          load,
        });
      }
      results.push({ webhooks: count, phases });
    }

    const metrics = await (await fetch(`${url}/metrics`)).text();
    const backlogGauge = metrics
      .split('\n')
      .filter((l) => l.startsWith('webhook_backlog_events'))
      .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);

    const cpus = os.cpus();
    console.log(`\nWebhook deliveries: ${db.description}, Node ${process.version}, ${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}, DB_POOL_MAX ${poolMax}, loopback receiver answering 200 at once`);
    for (const { webhooks, phases } of results) {
      console.log(`\n${webhooks} webhook(s)`);
      for (const p of phases) {
        const machine = p.load ? `other work on the machine ${p.load.foreignPct.toFixed(0)}% of a core, the database's backends ${p.load.databasePct.toFixed(0)}%` : 'machine load unknown';
        console.log(`  ${p.label}: ${p.events} events, ${p.writeRate.toFixed(0)} writes/s (${machine})`);
        console.log(`    deliveries/s: ${p.deliveryRateWriting.toFixed(0)} while writing; ${p.deliveryRateOverall.toFixed(0)} from the first write to the last receipt`);
        const drain = p.drainMs === undefined ? `not drained within ${drainMs / 1000} s: ${p.backlogAtEnd} still due` : `drained ${(p.drainMs / 1000).toFixed(1)} s later`;
        const alone = p.backlogAtStop > 100 ? `, ${p.drainRate.toFixed(0)} deliveries/s meanwhile (the worker alone)` : '';
        console.log(`    backlog when the writes stopped: ${p.backlogAtStop} deliveries; ${drain}${alone}`);
        console.log(`    commit -> receipt, from the mutation's response: ${latencySummary(p.fromResponse)}`);
        console.log(`    commit -> receipt, from the event's \`at\`:        ${latencySummary(p.fromAt)}`);
      }
    }
    console.log(`\nduplicates received: ${receiver.duplicates}; requests: ${receiver.requests}; webhook_backlog_events at the end (all webhooks): ${backlogGauge}`);
    // The server runs at LOG_LEVEL=warn: whatever it logged is a warning or worse, and may explain a stall.
    const warnings = new Map<string, number>();
    for (const line of server.lines) {
      let msg = line;
      try {
        msg = String((JSON.parse(line) as { msg?: unknown }).msg);
      } catch {
        // not JSON: counted as written
      }
      warnings.set(msg, (warnings.get(msg) ?? 0) + 1);
    }
    console.log(`server warnings and errors: ${warnings.size === 0 ? 'none' : [...warnings].map(([m, n]) => `${n} × "${m}"`).join('; ')}`);
  } finally {
    await server?.stop();
    await observer.end().catch(() => undefined);
    await receiver.close();
    agent.destroy();
    await db.release();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
