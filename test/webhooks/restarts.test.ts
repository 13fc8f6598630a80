/**
 * Webhooks across restarts: nothing is skipped when the delivering server stops and events are written while no
 * worker runs (another instance with WEBHOOK_WORKER=false takes the writes), nor when it crashes mid-POST and
 * starts again (only the event in flight is sent again, once the dead one's lease ended), nor when PostgreSQL itself restarts
 * mid-stream (a PostgreSQL this file owns); and delivery works behind PgBouncer in transaction pooling, leases
 * included (two instances share the webhooks; SIGKILL of one hands its webhooks to the other).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { skipWithout } from '../helpers/ci.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { feedCaughtUp } from '../helpers/feed.js';
import { runMigrate } from '../helpers/migrate.js';
import { ownPostgres, type OwnPostgres } from '../helpers/own-postgres.js';
import { pgbouncerMissing, startPgBouncer, type PgBouncer } from '../helpers/pgbouncer.js';
import { waitFor } from '../helpers/server.js';
import {
  burst,
  createTask,
  createWebhook,
  deleteAllWebhooks,
  duplicates,
  eventOf,
  feedAfter,
  firstArrivals,
  holderOf,
  lastEventId,
  leaseOwners,
  ownedBy,
  startInstance,
  startTarget,
  stopInstance,
  type Instance,
  type Target,
} from '../helpers/webhook-cluster.js';

/** Resolves once `target` got every event of `expected` and its webhook's stored position reached the last one. */
async function allDelivered(client: pg.Client, target: Target, expected: readonly string[], timeoutMs = 60_000): Promise<void> {
  const want = new Set(expected);
  await target.receiver.waitFor((reqs) => new Set(reqs.map(eventOf).filter((e) => want.has(e))).size === want.size, `all ${want.size} events`, timeoutMs);
  await waitFor(
    async () => {
      const { rows } = await client.query<{ id: string }>('select position_id::text as id from webhook where id = $1', [target.webhookId]);
      return rows[0]?.id === expected.at(-1);
    },
    'the webhook position at the last event',
    timeoutMs,
  );
}

describe('a server restart', () => {
  let db: TestDatabase;
  let observer: pg.Client;
  const started: Instance[] = [];
  const targets: Target[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('wh_restart');
    observer = await db.client();
    manager = await start('tt-wh-manager', { WEBHOOK_WORKER: 'false' }); // it migrates the new database
  });
  afterAll(async () => {
    await Promise.all(started.map((i) => stopInstance(i)));
    await Promise.all(targets.map((t) => t.close()));
    await db?.drop();
  });

  const start = async (name: string, env: Record<string, string> = {}) => {
    const instance = await startInstance(name, { DATABASE_URL: db.url, ...env });
    started.push(instance);
    return instance;
  };
  /** Manages webhooks and takes writes, but never delivers. */
  let manager: Instance;

  it('skips nothing written while no worker runs: the next start delivers it all, in order', async () => {
    const worker = await start('tt-wh-worker');
    const target = await startTarget(() => ({ status: 200, delayMs: 2 }));
    targets.push(target);
    const before = await lastEventId(observer);
    await createWebhook(manager.url, target);

    expect((await burst([manager.url], 20)).acked).toHaveLength(20);
    await feedCaughtUp(db);
    const first = await feedAfter(observer, before);
    await allDelivered(observer, target, first);

    expect((await stopInstance(worker))?.code).toBe(0);
    const { acked } = await burst([manager.url], 50);
    expect(acked).toHaveLength(50);
    await feedCaughtUp(db);
    // The manager never takes the lease.
    expect(ownedBy((await leaseOwners(observer)).get(target.webhookId), manager.pid)).toBe(false);
    const restartedAt = Date.now();
    const again = await start('tt-wh-worker-2');
    const expected = await feedAfter(observer, before);
    expect(expected).toHaveLength(70);
    await allDelivered(observer, target, expected);

    expect(firstArrivals(target.requests)).toEqual(expected);
    expect(duplicates(target.requests)).toEqual([]);
    expect(target.maxInFlight).toBe(1);
    // What was written while no worker ran arrived only once one ran again: the manager delivered none of it.
    const late = target.requests.filter((r) => !first.includes(eventOf(r)));
    expect(late).toHaveLength(50);
    expect(late.every((r) => r.receivedAt >= restartedAt)).toBe(true);
    expect(ownedBy((await leaseOwners(observer)).get(target.webhookId), again.pid)).toBe(true);
    expect((await stopInstance(again))?.code).toBe(0);
    await deleteAllWebhooks(observer);
  }, 120_000);

  it('after a crash (SIGKILL mid-POST), the next start resumes at the stored position: nothing skipped, only the event in flight again', async () => {
    const worker = await start('tt-wh-crashing');
    const HELD = 14;
    // The 15th request is held far longer than the lease: the worker dies with it in flight.
    const target = await startTarget((_r, index) => ({ status: 200, delayMs: index === HELD ? 10_000 : 2 }));
    targets.push(target);
    const before = await lastEventId(observer);
    await createWebhook(manager.url, target);

    const writing = burst([manager.url], 60, { concurrency: 2 });
    // Awaited below; this only keeps a failure before then from surfacing as an unhandled rejection.
    writing.catch(() => undefined);
    await target.receiver.waitFor((reqs) => reqs.length > HELD, 'the held request');
    worker.child.kill('SIGKILL');
    await worker.child.exited;
    target.forgetInFlight();
    const heldEvent = eventOf(target.requests[HELD]!);
    expect((await writing).acked).toHaveLength(60);
    await feedCaughtUp(db);
    const expected = await feedAfter(observer, before);
    expect(expected).toHaveLength(60);
    // Nothing was delivered past the held event: the stored position is before it.
    const { rows } = await observer.query<{ id: string; ends: number }>(
      'select position_id::text as id, extract(epoch from lease_expires_at) * 1000 as ends from webhook where id = $1',
      [target.webhookId],
    );
    expect(expected.indexOf(rows[0]!.id)).toBeLessThan(expected.indexOf(heldEvent));
    const leaseEnds = Number(rows[0]!.ends);

    const again = await start('tt-wh-restarted');
    await allDelivered(observer, target, expected);
    expect(firstArrivals(target.requests)).toEqual(expected);
    expect(duplicates(target.requests)).toEqual([heldEvent]);
    expect(target.maxInFlight).toBe(1);
    // The restarted server waited for the dead one's lease to end before sending anything.
    expect(target.requests.slice(HELD + 1).every((r) => r.receivedAt >= leaseEnds - 5)).toBe(true);
    expect(ownedBy((await leaseOwners(observer)).get(target.webhookId), again.pid)).toBe(true);
  }, 120_000);
});

describe('a PostgreSQL restart', () => {
  let own: OwnPostgres;
  let observer: pg.Client | undefined;
  let instance: Instance | undefined;
  let target: Target | undefined;

  beforeAll(async () => {
    own = await ownPostgres();
  });
  afterAll(async () => {
    await stopInstance(instance);
    await target?.close();
    await observer?.end().catch(() => undefined);
    await own?.destroy();
  });

  const connect = async () => {
    const c = new pg.Client({ connectionString: own.url });
    // A restart ends this connection; the error is expected and handled by reconnecting.
    c.on('error', () => undefined);
    await c.connect();
    return c;
  };

  it('skips nothing when PostgreSQL restarts mid-stream: every event arrives, in order', async () => {
    instance = await startInstance('tt-wh-pg', { DATABASE_URL: own.url, DB_ACQUIRE_TIMEOUT_MS: '1000' });
    // Slower than the writes, so a backlog is waiting when PostgreSQL goes away.
    target = await startTarget(() => ({ status: 200, delayMs: 20 }));
    observer = await connect();
    const before = await lastEventId(observer);
    await createWebhook(instance.url, target);

    let stopWriting = false;
    let acked = 0;
    let failedWrites = 0;
    // Two writers until told to stop; writes during the outage fail (SERVICE_UNAVAILABLE) and are counted.
    const writing = Promise.all(
      [0, 1].map(async () => {
        while (!stopWriting) {
          try {
            await createTask(instance!.url, 'across a PostgreSQL restart');
            acked++;
          } catch {
            failedWrites++;
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      }),
    );
    let stoppedAt: number;
    try {
      const received = () => new Set(target!.requests.map(eventOf)).size;
      await waitFor(() => received() >= 10 && acked - received() >= 20, 'deliveries flowing, with a backlog of 20 events behind them', 30_000);
      await observer.end();
      const ackedAtStop = acked;
      await own.stop();
      stoppedAt = Date.now();
      // Mid-stream: events written before the stop had not all reached the receiver yet.
      expect(ackedAtStop).toBeGreaterThan(received());
      // The server notices the outage (its writes fail) before PostgreSQL comes back.
      await waitFor(() => failedWrites > 0, 'a write to fail during the outage', 30_000);
      await own.start();
      const ackedAtRestart = acked;
      await waitFor(() => acked >= ackedAtRestart + 60, 'writes to flow again', 60_000);
    } finally {
      stopWriting = true;
      if (!own.running) await own.start();
      await writing;
    }

    observer = await connect();
    await feedCaughtUp({ client: connect });
    const expected = await feedAfter(observer, before);
    expect(expected.length).toBeGreaterThanOrEqual(acked);
    await allDelivered(observer, target, expected);

    expect(firstArrivals(target.requests)).toEqual(expected);
    // A POST answered just as PostgreSQL went away may be sent again (its position could not be stored): at most
    // the one event in flight then.
    const dups = duplicates(target.requests);
    expect(dups.length).toBeLessThanOrEqual(1);
    for (const id of dups) expect(target.requests.find((r) => eventOf(r) === id)!.receivedAt).toBeLessThanOrEqual(stoppedAt);
    expect(target.maxInFlight).toBe(1);
    expect(target.requests.some((r) => r.receivedAt > stoppedAt)).toBe(true);
    expect(instance.child.proc.exitCode).toBeNull();
  }, 120_000);
});

describe.skipIf(skipWithout(pgbouncerMissing))(`behind PgBouncer (transaction pooling)${pgbouncerMissing ? `: skipped, ${pgbouncerMissing}` : ''}`, () => {
  let db: TestDatabase;
  let observer: pg.Client;
  let bouncer: PgBouncer;
  const started: Instance[] = [];
  const targets: Target[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('wh_pgbouncer');
    observer = await db.client();
    // A small pool: the instances' statements share few server connections, so session state would leak.
    bouncer = await startPgBouncer({ backendUrl: inject('adminUrl'), poolSize: 4 });
  });
  afterAll(async () => {
    await Promise.all(started.map((i) => stopInstance(i)));
    await Promise.all(targets.map((t) => t.close()));
    await bouncer?.stop();
    await db?.drop();
  });

  it('delivers through PgBouncer, one instance per webhook at a time, and hands a killed instance’s webhooks over', async () => {
    const run = await runMigrate({ DATABASE_MIGRATION_URL: db.url });
    expect(run.code, run.stderr).toBe(0);
    const env = { DATABASE_URL: bouncer.url(db.name), DB_PGBOUNCER: 'true', DATABASE_MIGRATION_URL: db.url };
    const [a, b] = await Promise.all([startInstance('tt-wh-pgb-a', env), startInstance('tt-wh-pgb-b', env)]);
    started.push(a, b);
    const ts = await Promise.all([0, 1, 2].map(() => startTarget(() => ({ status: 200, delayMs: 3 }))));
    targets.push(...ts);
    const before = await lastEventId(observer);
    for (const t of ts) await createWebhook(a.url, t);

    const { acked } = await burst([a.url, b.url], 150, { concurrency: 2 });
    expect(acked).toHaveLength(150);
    await feedCaughtUp(db);
    const first = await feedAfter(observer, before);
    expect(first).toHaveLength(150);
    await Promise.all(ts.map((t) => allDelivered(observer, t, first)));
    for (const t of ts) {
      expect(firstArrivals(t.requests)).toEqual(first);
      expect(duplicates(t.requests)).toEqual([]);
      expect(t.maxInFlight).toBe(1);
    }

    // Leases work through PgBouncer: every webhook is held by one of the two, and a SIGKILLed holder's webhooks
    // go to the other once its lease ends.
    const owners = await waitFor(async () => {
      const o = await leaseOwners(observer);
      return ts.every((t) => ownedBy(o.get(t.webhookId), a.pid) || ownedBy(o.get(t.webhookId), b.pid)) ? o : undefined;
    }, 'every webhook leased', 20_000);
    const victim = (await holderOf(observer, ts[0]!.webhookId, [a, b]))!;
    const survivor = victim === a ? b : a;
    victim.child.kill('SIGKILL');
    const killedAt = Date.now();
    await victim.child.exited;
    for (const t of ts) if (ownedBy(owners.get(t.webhookId), victim.pid)) t.forgetInFlight();

    expect((await burst([survivor.url], 50, { concurrency: 2 })).acked).toHaveLength(50);
    await feedCaughtUp(db);
    const expected = await feedAfter(observer, before);
    expect(expected).toHaveLength(200);
    await Promise.all(ts.map((t) => allDelivered(observer, t, expected)));
    for (const t of ts) {
      expect(firstArrivals(t.requests)).toEqual(expected);
      // Nothing was in flight at the kill (the first 150 were all delivered before it).
      expect(duplicates(t.requests)).toEqual([]);
      expect(t.maxInFlight).toBe(1);
      expect(t.requests.filter((r) => !first.includes(eventOf(r))).every((r) => r.receivedAt > killedAt)).toBe(true);
    }
    const after = await leaseOwners(observer);
    expect(ts.every((t) => ownedBy(after.get(t.webhookId), survivor.pid))).toBe(true);
    expect(bouncer.log()).not.toMatch(/unsupported startup parameter/i);
  }, 120_000);
});
