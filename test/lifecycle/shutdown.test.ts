import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { spawnServer, type ChildServer } from '../helpers/child.js';
import { waitFor } from '../helpers/server.js';

let db: TestDatabase;
let observer: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase('shutdown');
  observer = await db.client();
});
afterAll(async () => {
  await db?.drop();
});

const appName = () => `tt-shutdown-${randomBytes(4).toString('hex')}`;

async function gql(url: string, query: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query }),
  });
  return { status: res.status, body: (await res.json()) as { data?: Record<string, { id: string; title: string }>; errors?: unknown[] } };
}

/** Process ids of the PostgreSQL backends named `applicationName` (prefix match), optionally filtered further. */
async function backendsOf(applicationName: string, where = 'true'): Promise<number[]> {
  const { rows } = await observer.query<{ pid: number }>(
    `select pid from pg_stat_activity where starts_with(application_name, $1) and ${where}`,
    [applicationName],
  );
  return rows.map((r) => r.pid);
}

/** Milliseconds from the `emergency shutdown` line to the `exiting` line (by their timestamps). */
function emergencyExitMs(child: ChildServer): number {
  const at = (msg: string) => Date.parse(String(child.lines.find((l) => l.msg === msg)?.time));
  return at('exiting') - at('emergency shutdown');
}

async function connectionsOf(applicationName: string): Promise<number> {
  const { rows } = await observer.query<{ n: string }>('select count(*) as n from pg_stat_activity where application_name = $1', [applicationName]);
  return Number(rows[0]?.n);
}

/**
 * Starts a server, creates a task, locks its row from another connection and sends an update that waits on the
 * lock: a slow operation that is really in flight inside the server. Returns the pieces to finish it.
 */
async function slowOperation(env: Record<string, string>) {
  const applicationName = appName();
  const child = spawnServer({ DATABASE_URL: db.url, DB_APPLICATION_NAME: applicationName, ...env });
  const url = await child.url();
  await child.ready();
  const created = await gql(url, 'mutation { createTask(input: { title: "slow" }) { id title } }');
  const id = created.body.data!.createTask!.id;
  const locker = await db.client();
  await locker.query('begin');
  await locker.query('select id from task where id = $1 for update', [id]);
  const pending = gql(url, `mutation SlowUpdate { updateTask(id: "${id}", input: { title: "finished" }) { id title } }`, {
    'x-request-id': 'slow-op-1',
  });
  pending.catch(() => undefined); // the emergency tests kill the server under it
  // In flight for real: the server's connection waits on our row lock.
  await waitFor(async () => {
    const { rows } = await observer.query<{ n: string }>(
      "select count(*) as n from pg_stat_activity where application_name = $1 and wait_event_type = 'Lock'",
      [applicationName],
    );
    return Number(rows[0]?.n) > 0;
  }, 'the update to wait on the row lock');
  return { child, url, id, locker, pending, applicationName };
}

async function stopped(child: ChildServer) {
  const exit = await child.exited;
  return exit.code;
}

describe('shutdown of the real process', () => {
  it('on SIGTERM finishes the in-flight operation, closes the pool and exits 0', async () => {
    const { child, locker, pending, applicationName } = await slowOperation({ SHUTDOWN_GRACE_MS: '20000' });
    const signalledAt = Date.now();
    child.kill('SIGTERM');
    await child.line((l) => l.msg === 'shutdown started: readiness is now 503', 'shutdown to start');
    await locker.query('commit');
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.body.data?.updateTask?.title).toBe('finished');
    expect(await stopped(child)).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(20_000);
    expect(child.lines.some((l) => l.msg === 'database pool closed')).toBe(true);
    expect(child.lines.some((l) => l.msg === 'shutdown complete')).toBe(true);
    await waitFor(async () => (await connectionsOf(applicationName)) === 0, 'no connection of the server left');
  });

  it('keeps serving during SHUTDOWN_DELAY_MS while readiness is 503', async () => {
    const applicationName = appName();
    const child = spawnServer({ DATABASE_URL: db.url, DB_APPLICATION_NAME: applicationName, SHUTDOWN_DELAY_MS: '1500' });
    const url = await child.url();
    await child.ready();
    child.kill('SIGTERM');
    await child.line((l) => l.msg === 'shutdown started: readiness is now 503', 'shutdown to start');
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
    const res = await gql(url, 'mutation { createTask(input: { title: "during delay" }) { id title } }');
    expect(res.body.data?.createTask?.title).toBe('during delay');
    expect(await stopped(child)).toBe(0);
  });

  it('past SHUTDOWN_GRACE_MS logs what is still running and exits 1 without waiting for the pool', async () => {
    // DB_CLOSE_TIMEOUT_MS stays at its 5 s default: the exit must not wait for it.
    const { child, locker, applicationName } = await slowOperation({ SHUTDOWN_GRACE_MS: '300' });
    const signalledAt = Date.now();
    child.kill('SIGTERM');
    expect(await stopped(child)).toBe(1);
    const tookMs = Date.now() - signalledAt;
    const inFlight = child.lines.find((l) => l.msg === 'still in flight at emergency shutdown');
    expect(inFlight).toMatchObject({ level: 'warn', name: 'SlowUpdate', type: 'mutation', requestId: 'slow-op-1' });
    expect(inFlight!.ageMs as number).toBeGreaterThanOrEqual(300);
    const pool = child.lines.find((l) => String(l.msg).startsWith('pool connections in use'));
    expect(pool).toMatchObject({ level: 'warn' });
    expect((pool!.pool as { used: number }).used).toBeGreaterThanOrEqual(1);
    expect(child.lines.find((l) => l.msg === 'exiting')).toMatchObject({ exitCode: 1 });
    expect(emergencyExitMs(child)).toBeLessThan(2000);
    expect(tookMs).toBeLessThan(300 + 2000);
    await locker.query('rollback');
    await waitFor(async () => (await connectionsOf(applicationName)) === 0, 'the dead server’s connections to go');
  });

  it('goes straight to the emergency path on a second signal, and exits within 2 s of it', async () => {
    const { child, locker } = await slowOperation({ SHUTDOWN_GRACE_MS: '60000' });
    child.kill('SIGTERM');
    await child.line((l) => l.msg === 'shutdown started: readiness is now 503', 'shutdown to start');
    const second = Date.now();
    child.kill('SIGINT');
    expect(await stopped(child)).toBe(1);
    expect(Date.now() - second).toBeLessThan(2000);
    expect(child.lines.some((l) => l.msg === 'second signal: emergency shutdown')).toBe(true);
    expect(child.lines.some((l) => l.msg === 'still in flight at emergency shutdown' && l.name === 'SlowUpdate')).toBe(true);
    await locker.query('rollback');
  });

  it('ends within SHUTDOWN_GRACE_MS + 2 s when every backend of the server is frozen, and loses nothing acknowledged', async () => {
    const applicationName = appName();
    const graceMs = 3000;
    const child = spawnServer({ DATABASE_URL: db.url, DB_APPLICATION_NAME: applicationName, SHUTDOWN_GRACE_MS: String(graceMs) });
    const url = await child.url();
    await child.ready();
    const kept = await gql(url, 'mutation { createTask(input: { title: "acknowledged" }) { id title } }');
    const keptId = kept.body.data!.createTask!.id;
    const locker = await db.client();
    await locker.query('begin');
    await locker.query('lock table task in exclusive mode');
    const creates = [1, 2, 3].map((n) => gql(url, `mutation Waiting${n} { createTask(input: { title: "waiting ${n}" }) { id } }`));
    for (const c of creates) c.catch(() => undefined); // the server dies under them
    await waitFor(async () => (await backendsOf(applicationName, "wait_event_type = 'Lock'")).length === 3, 'three creates to wait on the lock');
    const frozen = await backendsOf(applicationName); // the pool's and the listener's
    expect(frozen.length).toBeGreaterThanOrEqual(4);
    try {
      for (const pid of frozen) process.kill(pid, 'SIGSTOP');
      const signalledAt = Date.now();
      child.kill('SIGTERM');
      expect(await stopped(child)).toBe(1);
      const tookMs = Date.now() - signalledAt;
      expect(child.lines.filter((l) => l.msg === 'still in flight at emergency shutdown').map((l) => l.name).sort()).toEqual(['Waiting1', 'Waiting2', 'Waiting3']);
      expect(emergencyExitMs(child)).toBeLessThan(2000);
      expect(tookMs).toBeLessThan(graceMs + 2000);
    } finally {
      for (const pid of frozen) process.kill(pid, 'SIGCONT');
      await locker.query('rollback');
    }
    await waitFor(async () => (await connectionsOf(applicationName)) === 0, 'the dead server’s backends to end');
    const kept2 = await observer.query<{ title: string }>('select title from task where id = $1', [keptId]);
    expect(kept2.rows).toEqual([{ title: 'acknowledged' }]);
    // The creates were never answered: each may have landed once its lock came, but only whole, with its event.
    const { rows } = await observer.query<{ title: string; events: string }>(
      "select t.title, (select count(*) from task_event e where e.task_id = t.id and e.kind = 'CREATED') as events from task t where t.title like 'waiting %'",
    );
    for (const row of rows) expect(row.events).toBe('1');
  });

  it('drains and exits 0 with a frozen LISTEN connection, and exits within 2 s of a second signal with one in flight', async () => {
    // Graceful: the listener's close is bounded; nothing else waits on it.
    const applicationName = appName();
    const child = spawnServer({ DATABASE_URL: db.url, DB_APPLICATION_NAME: applicationName, SHUTDOWN_GRACE_MS: '5000' });
    await child.ready();
    const listener = await waitFor(async () => (await backendsOf(`${applicationName}:listener`))[0], 'the listener backend');
    process.kill(listener, 'SIGSTOP');
    try {
      const signalledAt = Date.now();
      child.kill('SIGTERM');
      expect(await stopped(child)).toBe(0);
      expect(Date.now() - signalledAt).toBeLessThan(5000 + 2000);
      expect(child.lines.some((l) => l.msg === 'shutdown complete')).toBe(true);
    } finally {
      process.kill(listener, 'SIGCONT');
    }

    // Emergency: an operation held by a lock, the listener frozen, then a second signal.
    const slow = await slowOperation({ SHUTDOWN_GRACE_MS: '60000' });
    const frozenListener = await waitFor(async () => (await backendsOf(`${slow.applicationName}:listener`))[0], 'the listener backend');
    process.kill(frozenListener, 'SIGSTOP');
    try {
      slow.child.kill('SIGTERM');
      await slow.child.line((l) => l.msg === 'shutdown started: readiness is now 503', 'shutdown to start');
      const second = Date.now();
      slow.child.kill('SIGINT');
      expect(await stopped(slow.child)).toBe(1);
      expect(Date.now() - second).toBeLessThan(2000);
    } finally {
      process.kill(frozenListener, 'SIGCONT');
      await slow.locker.query('rollback');
    }
  });

  it('refuses a bad setting with one line naming the variable and exit code 1', async () => {
    const child = spawnServer({ DATABASE_URL: db.url, DB_POOL_MAX: 'lots' });
    expect(await stopped(child)).toBe(1);
    const err = child.stderr().trim().split('\n');
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(/^Invalid DB_POOL_MAX \(got "lots"\): /);
  });
});
