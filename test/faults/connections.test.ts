/**
 * Faults on the server's connections, against a PostgreSQL this file owns: backends terminated while idle and
 * mid-query, the pool exhausted, a statement timeout, a frozen backend. Each time the process stays alive, nothing
 * acknowledged is lost, and the pool recovers.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownPostgres, type OwnPostgres } from '../helpers/own-postgres.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';

let db: OwnPostgres;
let admin: pg.Client;

beforeAll(async () => {
  db = await ownPostgres();
  admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
});
afterAll(async () => {
  await admin?.end();
  await db?.destroy();
});

const appName = () => `tt-fault-${randomBytes(3).toString('hex')}`;

async function backends(applicationName: string, where = 'true'): Promise<Array<{ pid: number; state: string; wait_event_type: string | null }>> {
  const { rows } = await admin.query<{ pid: number; state: string; wait_event_type: string | null }>(
    `select pid, state, wait_event_type from pg_stat_activity where application_name = $1 and ${where}`,
    [applicationName],
  );
  return rows;
}

async function createTask(server: TestServer, title: string): Promise<string> {
  const res = await server.gql<{ createTask: { id: string } }>(`mutation { createTask(input: { title: "${title}" }) { id } }`);
  expect(res.body.errors).toBeUndefined();
  return res.body.data!.createTask.id;
}

async function healthy(server: TestServer): Promise<void> {
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  const res = await server.gql<{ tasks: { nodes: unknown[] } }>('{ tasks(first: 1) { nodes { id } } }');
  expect(res.body.errors).toBeUndefined();
  // Nothing is left checked out once the work is done.
  await waitFor(async () => {
    const h = await server.gql<{ health: { pool: { used: number } } }>('{ health { pool { used } } }');
    return h.body.data?.health.pool.used === 0;
  }, 'the pool to settle');
}

describe('connection faults', () => {
  it('survives every idle backend being terminated: reads and writes right after succeed', async () => {
    const name = appName();
    const server = await startServer(db.url, { DB_APPLICATION_NAME: name, DB_POOL_MIN: '3' });
    try {
      await Promise.all([1, 2, 3].map((i) => createTask(server, `warm ${i}`)));
      const before = await backends(name);
      expect(before.length).toBeGreaterThanOrEqual(1);
      await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1', [name]);
      // At once, no waiting for the pool to notice. Reads are retried on a fresh connection and must succeed. A
      // write is never sent twice: it succeeds, or fails with SERVICE_UNAVAILABLE having written nothing.
      const reads = await Promise.all([1, 2, 3].map(() => server.gql('{ tasks(first: 5) { nodes { id title } } }')));
      for (const r of reads) expect(r.body.errors).toBeUndefined();
      const writes = await Promise.all([1, 2, 3].map((i) => server.gql(`mutation { createTask(input: { title: "after ${i}" }) { id } }`)));
      for (const [i, w] of writes.entries()) {
        if (!w.body.errors) continue;
        expect(w.body.errors[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
        const { rows } = await admin.query('select count(*)::int as n from task where title = $1', [`after ${i + 1}`]);
        expect(rows[0]).toEqual({ n: 0 });
      }
      // And the pool has recovered: writes succeed again.
      await createTask(server, 'after recovery');
      const pids = new Set((await backends(name)).map((b) => b.pid));
      for (const b of before) expect(pids.has(b.pid)).toBe(false);
      await healthy(server);
    } finally {
      await server.stop();
    }
  });

  it('retries a read whose backend is terminated mid-query, once, on a fresh connection', async () => {
    const name = appName();
    const server = await startServer(db.url, { DB_APPLICATION_NAME: name });
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    try {
      const id = await createTask(server, 'read me');
      await blocker.query('begin');
      await blocker.query('lock table task in access exclusive mode');
      const pending = server.gql<{ task: { title: string } }>(`{ task(id: "${id}") { title } }`);
      const [stuck] = await waitFor(async () => {
        const rows = await backends(name, "wait_event_type = 'Lock'");
        return rows.length ? rows : undefined;
      }, 'the read to wait on the lock');
      await admin.query('select pg_terminate_backend($1)', [stuck!.pid]);
      // The retry waits on the same lock, on another backend.
      await waitFor(async () => (await backends(name, `wait_event_type = 'Lock' and pid <> ${stuck!.pid}`)).length > 0, 'the retried read');
      await blocker.query('commit');
      const res = await pending;
      expect(res.body.errors).toBeUndefined();
      expect(res.body.data!.task.title).toBe('read me');
      expect(server.logs.some((l) => l.msg === 'read failed on a dead connection: retrying once on a fresh one')).toBe(true);
      await healthy(server);
    } finally {
      await blocker.query('rollback').catch(() => undefined);
      await blocker.end();
      await server.stop();
    }
  });

  it('fails within DB_ACQUIRE_TIMEOUT_MS with SERVICE_UNAVAILABLE when the pool is exhausted, and recovers', async () => {
    const name = appName();
    const server = await startServer(db.url, { DB_APPLICATION_NAME: name, DB_POOL_MAX: '2', DB_ACQUIRE_TIMEOUT_MS: '500' });
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    try {
      const id = await createTask(server, 'contended');
      await locker.query('begin');
      await locker.query('select 1 from task where id = $1 for update', [id]);
      const holders = [1, 2].map((i) => server.gql(`mutation { updateTask(id: "${id}", input: { title: "holder ${i}" }) { title } }`));
      await waitFor(async () => (await backends(name, "wait_event_type = 'Lock'")).length === 2, 'both connections to be held');
      const started = Date.now();
      const refused = await server.gql('{ tasks(first: 1) { nodes { id } } }');
      const took = Date.now() - started;
      expect(refused.body.errors?.[0]?.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', reason: 'POOL_EXHAUSTED' });
      expect(took).toBeGreaterThanOrEqual(450);
      expect(took).toBeLessThan(3000);
      await locker.query('commit');
      for (const r of await Promise.all(holders)) expect(r.body.errors).toBeUndefined();
      await healthy(server);
    } finally {
      await locker.query('rollback').catch(() => undefined);
      await locker.end();
      await server.stop();
    }
  });

  it('maps a statement_timeout expiry to SERVICE_UNAVAILABLE with reason STATEMENT_TIMEOUT and changes nothing', async () => {
    const name = appName();
    const server = await startServer(db.url, { DB_APPLICATION_NAME: name, DB_STATEMENT_TIMEOUT_MS: '400' });
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    try {
      const id = await createTask(server, 'slow');
      await locker.query('begin');
      await locker.query('select 1 from task where id = $1 for update', [id]);
      const res = await server.gql(`mutation { updateTask(id: "${id}", input: { title: "never" }) { title } }`);
      expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', reason: 'STATEMENT_TIMEOUT' });
      await locker.query('commit');
      const { rows } = await admin.query('select title, version from task where id = $1', [id]);
      expect(rows[0]).toEqual({ title: 'slow', version: 1 });
      await healthy(server);
    } finally {
      await locker.query('rollback').catch(() => undefined);
      await locker.end();
      await server.stop();
    }
  });

  it('never hangs on a frozen backend (SIGSTOP): requests end in bounded time, and the pool recovers after SIGCONT', async () => {
    const name = appName();
    const server = await startServer(db.url, { DB_APPLICATION_NAME: name, DB_POOL_MIN: '2', DB_POOL_MAX: '2', DB_STATEMENT_TIMEOUT_MS: '300' });
    const frozen: number[] = [];
    try {
      await Promise.all([1, 2].map((i) => createTask(server, `frozen ${i}`)));
      const [victim] = await backends(name);
      process.kill(victim!.pid, 'SIGSTOP');
      frozen.push(victim!.pid);
      const timings = await Promise.all(
        Array.from({ length: 4 }, async () => {
          const started = Date.now();
          const res = await server.gql('{ tasks(first: 3) { nodes { id } } }');
          return { took: Date.now() - started, code: res.body.errors?.[0]?.extensions?.code ?? 'OK', reason: res.body.errors?.[0]?.extensions?.reason };
        }),
      );
      for (const t of timings) {
        // statement_timeout cannot fire in a stopped backend; the client-side read timeout (300 + 1000 ms) does.
        expect(t.took).toBeLessThan(8000);
        expect(['OK', 'SERVICE_UNAVAILABLE']).toContain(t.code);
      }
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      process.kill(victim!.pid, 'SIGCONT');
      frozen.pop();
      const after = await Promise.all(Array.from({ length: 4 }, () => server.gql('{ tasks(first: 3) { nodes { id } } }')));
      for (const r of after) expect(r.body.errors).toBeUndefined();
      await healthy(server);
    } finally {
      for (const pid of frozen) process.kill(pid, 'SIGCONT');
      await server.stop();
    }
  });
});
