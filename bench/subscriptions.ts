/**
 * Subscription delivery latency across instances: two server processes (production mode) on one fresh database;
 * a subscriber on B; `createTask` on A, one after another with a pause between them; for each event, the time from
 * sending the mutation to A until B delivers its event, and A's round trip for comparison.
 *
 *   npx tsx bench/subscriptions.ts [--events 500] [--gap-ms 10] [--concurrency 1]
 *
 * The database comes from DATABASE_URL (a fresh database in that server) or, with nothing set, an embedded
 * PostgreSQL in a temporary directory (bench/database.ts). Prints p50/p90/p99/max in ms.
 */
import { parseArgs } from 'node:util';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { provisionDatabase } from './database.js';
import { buildServers, startOurServer, type ChildServer } from './servers.js';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '500' },
    'gap-ms': { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '1' },
  },
});
const events = Number(values.events);
const gapMs = Number(values['gap-ms']);
const concurrency = Number(values.concurrency);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

function summary(label: string, samples: number[]): string {
  const s = [...samples].sort((x, y) => x - y);
  const f = (n: number) => n.toFixed(1);
  return `${label}: p50 ${f(percentile(s, 50))} ms, p90 ${f(percentile(s, 90))} ms, p99 ${f(percentile(s, 99))} ms, max ${f(s.at(-1) ?? Number.NaN)} ms (n=${s.length})`;
}

async function main(): Promise<void> {
  const db = await provisionDatabase({ keep: false, existing: process.env.DATABASE_URL, log: (line) => console.log(line) });
  buildServers((line) => console.log(line));
  const servers: ChildServer[] = [];
  try {
    // A first, so it migrates alone; then B.
    servers.push(await startOurServer({ databaseUrl: db.url, logLevel: 'warn', poolMax: 10 }));
    servers.push(await startOurServer({ databaseUrl: db.url, logLevel: 'warn', poolMax: 10 }));
    const [a, b] = servers as [ChildServer, ChildServer];

    const sent = new Map<string, number>();
    const delivered = new Map<string, number>();
    let onDelivered: () => void = () => undefined;
    const client = createClient({ url: `${b.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0 });
    const subscribed = new Promise<void>((resolve, reject) => {
      client.on('connected', () => resolve());
      client.subscribe<{ taskEvents: { taskId: string } }>(
        { query: 'subscription { taskEvents(kinds: [CREATED]) { taskId } }' },
        {
          next: ({ data }) => {
            if (data) delivered.set(data.taskEvents.taskId, performance.now());
            onDelivered();
          },
          error: reject,
          complete: () => undefined,
        },
      );
    });
    await subscribed;
    // The stream starts when B has registered it: wait for its gauge.
    for (;;) {
      const text = await (await fetch(`${b.url}/metrics`)).text();
      if (/^graphql_subscriptions_active 1$/m.test(text)) break;
      await new Promise((r) => setTimeout(r, 20));
    }

    const roundTrips: number[] = [];
    const acked = new Map<string, number>();
    let next = 0;
    const send = async () => {
      while (next < events) {
        const id = crypto.randomUUID();
        next++;
        const started = performance.now();
        sent.set(id, started);
        const res = await fetch(`${a.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: 'mutation($id: ID!) { createTask(input: { id: $id, title: "bench" }) { id } }', variables: { id } }),
        });
        if (res.status !== 200) throw new Error(`createTask answered ${res.status}: ${await res.text()}`);
        acked.set(id, performance.now());
        roundTrips.push(acked.get(id)! - started);
        if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
      }
    };
    const startedAll = performance.now();
    await Promise.all(Array.from({ length: concurrency }, send));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${delivered.size} of ${events} events delivered`)), 30_000);
      onDelivered = () => {
        if (delivered.size >= events) {
          clearTimeout(timer);
          resolve();
        }
      };
      onDelivered();
    });
    const elapsed = (performance.now() - startedAll) / 1000;
    const latencies = [...sent].map(([id, at]) => (delivered.get(id) as number) - at);
    // Negative when B delivers before A's response reaches the client: the NOTIFY goes out at commit.
    const afterAck = [...acked].map(([id, at]) => (delivered.get(id) as number) - at);
    await client.dispose();

    console.log(`\n${events} createTask on A (concurrency ${concurrency}, ${gapMs} ms apart), subscriber on B, ${db.description}`);
    console.log(summary('A mutation sent -> event delivered on B', latencies));
    console.log(summary('A mutation round trip (for comparison)', roundTrips));
    console.log(summary("A's response received -> event delivered on B", afterAck));
    console.log(`throughput: ${(events / elapsed).toFixed(0)} events/s end to end`);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await db.release();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
