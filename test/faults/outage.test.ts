/**
 * The database away for a long stretch, at boot and at runtime, against a PostgreSQL this file owns: the server
 * stays alive and not ready, the circuit breaker opens and fails fast, and once PostgreSQL answers again operations
 * succeed within 2 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownPostgres, type OwnPostgres } from '../helpers/own-postgres.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';

let db: OwnPostgres;

beforeAll(async () => {
  db = await ownPostgres();
});
afterAll(async () => {
  await db?.destroy();
});

const read = (server: TestServer) => server.gql<{ tasks: { nodes: unknown[] } }>('{ tasks(first: 1) { nodes { id } } }');

/** Time until an operation succeeds, polling every 50 ms. */
async function timeToRecover(server: TestServer): Promise<number> {
  const started = Date.now();
  await waitFor(async () => !(await read(server)).body.errors, 'an operation to succeed', 15_000);
  return Date.now() - started;
}

describe('a long database outage', () => {
  it('boots live but not ready while the database is down, opens the breaker on a runtime outage, and recovers within 2 s', async () => {
    await db.stop();
    const server = await startServer(db.url, { DB_CONNECT_DEADLINE_MS: '120000' }, false);
    try {
      // Down at boot, for several attempts.
      await waitFor(() => server.logs.filter((l) => l.msg === 'database not reachable yet').length >= 3, 'three failed boot attempts');
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
      expect((await read(server)).body.errors?.[0]?.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', reason: 'STARTING' });
      await db.start();
      await server.app.ready;
      await waitFor(async () => (await fetch(`${server.url}/readyz`)).status === 200, 'readiness after boot');

      // Down at runtime: connection failures open the breaker.
      await db.stop();
      for (let i = 0; i < 6; i++) {
        const res = await read(server);
        expect(res.body.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
      }
      await waitFor(() => server.logs.find((l) => String(l.msg).startsWith('circuit breaker opened')), 'the breaker to open');
      // Open: refused at once, without waiting on the pool, and not ready.
      const started = Date.now();
      const fast = await read(server);
      expect(Date.now() - started).toBeLessThan(500); // no pool wait (that would be DB_ACQUIRE_TIMEOUT_MS, 5 s)
      expect(fast.body.errors?.[0]?.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', reason: 'CIRCUIT_OPEN' });
      const ready = await fetch(`${server.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { reason: string }).reason).toMatch(/circuit breaker open/);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toMatch(/^circuit_breaker_state 2$/m);

      // Keep it down a while longer: the breaker keeps probing and stays open.
      await new Promise((r) => setTimeout(r, 2500));
      expect((await read(server)).body.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');

      await db.start();
      const recoveredIn = await timeToRecover(server);
      expect(recoveredIn).toBeLessThan(2000);
      await waitFor(async () => (await fetch(`${server.url}/readyz`)).status === 200, 'readiness after the outage');
      expect(server.logs.some((l) => l.msg === 'circuit breaker closed: the database answers again')).toBe(true);
      const write = await server.gql<{ createTask: { title: string } }>('mutation { createTask(input: { title: "after the outage" }) { title } }');
      expect(write.body.data?.createTask.title).toBe('after the outage');
    } finally {
      await server.stop();
      if (!db.running) await db.start();
    }
  });
});
