/**
 * PostgreSQL restarted under concurrent load, against a PostgreSQL this file owns: every createTask the server
 * acknowledged is in the database afterwards, failures in between are SERVICE_UNAVAILABLE (never a 500), the
 * process stays alive and the pool recovers.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownPostgres, type OwnPostgres } from '../helpers/own-postgres.js';
import { startServer, waitFor } from '../helpers/server.js';

let db: OwnPostgres;

beforeAll(async () => {
  db = await ownPostgres();
});
afterAll(async () => {
  await db?.destroy();
});

describe('PostgreSQL restarted under load', () => {
  it('loses no acknowledged write', async () => {
    const server = await startServer(db.url, { DB_POOL_MAX: '6', DB_ACQUIRE_TIMEOUT_MS: '1000' });
    const acknowledged: string[] = [];
    const failures = new Map<string, number>();
    let running = true;
    const worker = async () => {
      while (running) {
        const id = randomUUID();
        try {
          const res = await server.gql<{ createTask: { id: string } }>('mutation($id: ID!) { createTask(input: { id: $id, title: "under load" }) { id } }', { id });
          if (res.body.data?.createTask?.id === id) acknowledged.push(id);
          else {
            const code = String(res.body.errors?.[0]?.extensions?.code);
            failures.set(code, (failures.get(code) ?? 0) + 1);
            await new Promise((r) => setTimeout(r, 20));
          }
        } catch {
          failures.set('HTTP', (failures.get('HTTP') ?? 0) + 1);
        }
      }
    };
    try {
      const workers = Array.from({ length: 8 }, worker);
      await waitFor(() => acknowledged.length >= 50, 'load to build up');
      await db.stop();
      const duringOutage = acknowledged.length;
      await new Promise((r) => setTimeout(r, 1000));
      await db.start();
      await waitFor(() => acknowledged.length >= duringOutage + 100, 'writes to flow again', 20_000);
      running = false;
      await Promise.all(workers);

      expect([...failures.keys()].filter((code) => code !== 'SERVICE_UNAVAILABLE')).toEqual([]);
      expect(failures.get('SERVICE_UNAVAILABLE') ?? 0).toBeGreaterThan(0);
      const check = new pg.Client({ connectionString: db.url });
      await check.connect();
      const { rows } = await check.query<{ n: number }>('select count(*)::int as n from task where id = any($1::uuid[])', [acknowledged]);
      await check.end();
      expect(rows[0]!.n).toBe(acknowledged.length);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      await waitFor(async () => (await fetch(`${server.url}/readyz`)).status === 200, 'readiness');
      const h = await server.gql<{ health: { pool: { used: number; pending: number } } }>('{ health { pool { used pending } } }');
      expect(h.body.data?.health.pool).toEqual({ used: 0, pending: 0 });
    } finally {
      running = false;
      await server.stop();
      if (!db.running) await db.start();
    }
  });
});
