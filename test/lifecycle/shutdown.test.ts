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

  it('past SHUTDOWN_GRACE_MS logs what is still running and exits 1', async () => {
    const { child, locker, applicationName } = await slowOperation({ SHUTDOWN_GRACE_MS: '300', DB_CLOSE_TIMEOUT_MS: '500' });
    child.kill('SIGTERM');
    expect(await stopped(child)).toBe(1);
    const inFlight = child.lines.find((l) => l.msg === 'still in flight at emergency shutdown');
    expect(inFlight).toMatchObject({ level: 'warn', name: 'SlowUpdate', type: 'mutation', requestId: 'slow-op-1' });
    expect(inFlight!.ageMs as number).toBeGreaterThanOrEqual(300);
    const pool = child.lines.find((l) => String(l.msg).startsWith('pool connections in use'));
    expect(pool).toMatchObject({ level: 'warn' });
    expect((pool!.pool as { used: number }).used).toBeGreaterThanOrEqual(1);
    await locker.query('rollback');
    await waitFor(async () => (await connectionsOf(applicationName)) === 0, 'the dead server’s connections to go');
  });

  it('goes straight to the emergency path on a second signal', async () => {
    const { child, locker } = await slowOperation({ SHUTDOWN_GRACE_MS: '60000', DB_CLOSE_TIMEOUT_MS: '500' });
    child.kill('SIGTERM');
    await child.line((l) => l.msg === 'shutdown started: readiness is now 503', 'shutdown to start');
    const second = Date.now();
    child.kill('SIGINT');
    expect(await stopped(child)).toBe(1);
    expect(Date.now() - second).toBeLessThan(10_000);
    expect(child.lines.some((l) => l.msg === 'second signal: emergency shutdown')).toBe(true);
    expect(child.lines.some((l) => l.msg === 'still in flight at emergency shutdown' && l.name === 'SlowUpdate')).toBe(true);
    await locker.query('rollback');
  });

  it('refuses a bad setting with one line naming the variable and exit code 1', async () => {
    const child = spawnServer({ DATABASE_URL: db.url, DB_POOL_MAX: 'lots' });
    expect(await stopped(child)).toBe(1);
    const err = child.stderr().trim().split('\n');
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(/^Invalid DB_POOL_MAX \(got "lots"\): /);
  });
});
