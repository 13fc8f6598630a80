import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { adminUrlFor, createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startServer, waitFor } from '../helpers/server.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { TaskSchema } from '../../src/tasks/task.entity.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('boot');
});
afterAll(async () => {
  await db?.drop();
});

describe('boot', () => {
  it('is live but not ready while the database is unreachable, and becomes ready once it appears', async () => {
    const proxy = await TcpProxy.create(db.url);
    const server = await startServer(proxy.urlFor(db.url), {}, false);
    try {
      // Wait until boot has tried (and failed) at least once, so the 503s below are the "waiting" state.
      await waitFor(() => server.logs.find((l) => l.msg === 'database not reachable yet'), 'a failed connection attempt');
      // The first line names the runtime: npm scripts run on node_modules/.bin's Node, not the machine's.
      expect(server.logs[0]).toMatchObject({ level: 'info', node: process.version, msg: `starting on Node.js ${process.version}` });
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
      const gql = await server.gql('{ health { database } }');
      expect(gql.status).toBe(503);
      expect(gql.body.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');

      await proxy.open();
      await server.app.ready;
      await waitFor(async () => (await fetch(`${server.url}/readyz`)).status === 200, 'readiness');
      const res = await server.gql<{ createTask: { title: string } }>('mutation { createTask(input: { title: "late" }) { title } }');
      expect(res.body.data?.createTask.title).toBe('late');
      const attempts = server.logs.filter((l) => l.msg === 'database not reachable yet');
      expect(attempts.length).toBeGreaterThanOrEqual(1);
      // Backoff delays are capped at 5 s.
      for (const a of attempts) expect(a.retryInMs as number).toBeLessThanOrEqual(5000);
    } finally {
      await server.stop();
      await proxy.close();
    }
  });

  it('gives up after DB_CONNECT_DEADLINE_MS with a line naming the setting', async () => {
    const proxy = await TcpProxy.create(db.url);
    const started = Date.now();
    const server = await startServer(proxy.urlFor(db.url), { DB_CONNECT_DEADLINE_MS: '600' }, false);
    try {
      await expect(server.app.ready).rejects.toThrow(/DB_CONNECT_DEADLINE_MS \(600 ms\)/);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(server.logs.some((l) => l.level === 'error' && String(l.msg).startsWith('boot failed'))).toBe(true);
    } finally {
      await server.stop();
    }
  });

  it('stops at once, without retrying, when the database does not exist', async () => {
    const started = Date.now();
    const server = await startServer(adminUrlFor('tt_no_such_database'), { DB_CONNECT_DEADLINE_MS: '60000' }, false);
    try {
      await expect(server.app.ready).rejects.toThrow(/database does not exist: check DATABASE_URL/);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(server.logs.filter((l) => l.msg === 'database not reachable yet')).toHaveLength(0);
    } finally {
      await server.stop();
    }
  });

  it('lets several instances boot at once against one fresh database and migrates it once', async () => {
    const fresh = await createTestDatabase('boot_many');
    try {
      const servers = await Promise.all([1, 2, 3].map(() => startServer(fresh.url)));
      for (const s of servers) expect(s.app.state()).toBe('ready');
      const applied = servers.flatMap((s) => s.logs.filter((l) => l.msg === 'migrations applied'));
      expect(applied).toHaveLength(1);
      const c = await fresh.client();
      const { rows } = await c.query<{ n: string }>('select count(*) as n from mikro_orm_migrations');
      expect(Number(rows[0]?.n)).toBeGreaterThan(0);
      await Promise.all(servers.map((s) => s.stop()));
    } finally {
      await fresh.drop();
    }
  });

  it('ignores MIKRO_ORM_* variables: configuration comes from config.ts alone', async () => {
    process.env.MIKRO_ORM_CLIENT_URL = 'postgres://nobody@127.0.0.1:1/nowhere';
    process.env.MIKRO_ORM_ALLOW_GLOBAL_CONTEXT = 'true';
    process.env.MIKRO_ORM_DEBUG = 'true';
    try {
      const server = await startServer(db.url);
      const orm = server.app.orm()!;
      expect(orm.config.get('clientUrl')).toBe(db.url);
      expect(orm.config.get('allowGlobalContext')).toBe(false);
      // The root EntityManager refuses work outside an operation's fork.
      await expect(orm.em.find(TaskSchema, {})).rejects.toThrow(/global EntityManager/);
      await server.stop();
    } finally {
      delete process.env.MIKRO_ORM_CLIENT_URL;
      delete process.env.MIKRO_ORM_ALLOW_GLOBAL_CONTEXT;
      delete process.env.MIKRO_ORM_DEBUG;
    }
  });

  it('opens DB_POOL_MIN connections at boot, before any request, and keeps them', async () => {
    const server = await startServer(db.url, { DB_APPLICATION_NAME: 'tt-boot-min', DB_POOL_MIN: '3', DB_POOL_MAX: '5' });
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      // pg's pool opens connections only on demand: the boot opened these (src/db/orm.ts, openPoolMinimum).
      expect((await server.app.orm()!.em.getConnection().getNativeClient()).totalCount).toBe(3);
      expect(server.logs.find((l) => l.msg === 'database pool holds its minimum')).toMatchObject({ open: 3, min: 3 });
      // (The subscription listener's connection is named 'tt-boot-min:listener'.)
      const { rows } = await c.query<{ n: string }>("select count(*) as n from pg_stat_activity where application_name = 'tt-boot-min'");
      expect(Number(rows[0]?.n)).toBe(3);
    } finally {
      await server.stop();
      await c.end();
    }
  });

  it('uses the configured application_name and statement_timeout on its connections', async () => {
    const server = await startServer(db.url, { DB_APPLICATION_NAME: 'tt-boot-probe', DB_STATEMENT_TIMEOUT_MS: '1234', DB_POOL_MIN: '1' });
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      await server.gql('{ tasks { nodes { id } } }');
      const { rows } = await c.query<{ n: string }>(
        "select count(*) as n from pg_stat_activity where application_name = 'tt-boot-probe' and datname = $1",
        [db.name],
      );
      expect(Number(rows[0]?.n)).toBeGreaterThanOrEqual(1);
      const res = await server.app.orm()!.em.fork().execute<Array<{ statement_timeout: string }>>('show statement_timeout');
      expect(res[0]?.statement_timeout).toBe('1234ms');
    } finally {
      await server.stop();
      // After stop, none of its connections remain.
      const { rows } = await c.query<{ n: string }>("select count(*) as n from pg_stat_activity where application_name = 'tt-boot-probe'");
      expect(Number(rows[0]?.n)).toBe(0);
      await c.end();
    }
  });
});
