/**
 * Several instances booting at once against one fresh database (a deploy of N replicas): all become ready, the
 * migrations are applied exactly once (one instance applies them, the others wait on the advisory lock and find
 * nothing to do), and the schema is the one `npm run migrate` builds. And the migrate command's exit codes.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminUrlFor, createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { spawnServer, type ChildServer } from '../helpers/child.js';
import { runMigrate } from '../helpers/migrate.js';

const INSTANCES = 3;

/** Tables, columns, indexes and constraints of a database's public schema, as comparable text. */
async function schemaOf(url: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ line: string }>(`
      select format('column %s.%s %s %s %s', table_name, column_name, data_type, is_nullable, coalesce(column_default, '')) as line
        from information_schema.columns where table_schema = 'public' and table_name <> 'mikro_orm_migrations'
      union all
      select format('index %s %s', indexname, indexdef) from pg_indexes where schemaname = 'public' and tablename <> 'mikro_orm_migrations'
      union all
      select format('constraint %s %s', conname, pg_get_constraintdef(oid)) from pg_constraint where connamespace = 'public'::regnamespace
      order by 1`);
    return rows.map((r) => r.line);
  } finally {
    await c.end();
  }
}

describe(`${INSTANCES} instances booting at once on one fresh database`, () => {
  let db: TestDatabase | undefined;
  let reference: TestDatabase | undefined;
  const servers: ChildServer[] = [];

  beforeAll(async () => {
    [db, reference] = await Promise.all([createTestDatabase('boot_many'), createTestDatabase('boot_ref')]);
  });
  afterAll(async () => {
    for (const s of servers) if (s.proc.exitCode === null && s.proc.signalCode === null) s.kill('SIGTERM');
    await Promise.all(servers.map((s) => s.exited));
    await db?.drop();
    await reference?.drop();
  });

  it('all become ready, the migrations are applied exactly once, and the schema is the migrated one', async () => {
    const url = db!.url;
    servers.push(...Array.from({ length: INSTANCES }, () => spawnServer({ DATABASE_URL: url, DB_POOL_MIN: '0' })));
    await Promise.all(servers.map((s) => s.line((l) => l.msg === 'ready', 'ready', 120_000)));

    const appliers = servers.flatMap((s) => s.lines.filter((l) => l.msg === 'migrations applied'));
    const idle = servers.flatMap((s) => s.lines.filter((l) => l.msg === 'schema is up to date'));
    expect(appliers).toHaveLength(1);
    expect(idle).toHaveLength(INSTANCES - 1);
    const applied = appliers[0]!.applied as string[];
    expect(applied.length).toBeGreaterThanOrEqual(2);

    const c = await db!.client();
    const { rows } = await c.query<{ name: string; n: number }>('select name, count(*)::int as n from mikro_orm_migrations group by name order by name');
    expect(rows).toEqual(applied.map((name) => ({ name, n: 1 })));

    const run = await runMigrate({ DATABASE_MIGRATION_URL: reference!.url });
    expect(run.code, run.stderr).toBe(0);
    expect(await schemaOf(url)).toEqual(await schemaOf(reference!.url));

    // Each instance serves, and sees what the others wrote.
    const ids: string[] = [];
    for (const [i, s] of servers.entries()) {
      const res = await fetch(`${await s.url()}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: `mutation { createTask(input: { title: "from ${i}" }) { id } }` }),
      });
      ids.push(((await res.json()) as { data: { createTask: { id: string } } }).data.createTask.id);
    }
    const { rows: tasks } = await c.query<{ n: number }>('select count(*)::int as n from task where id = any($1)', [ids]);
    expect(tasks[0]!.n).toBe(INSTANCES);

    for (const s of servers) s.kill('SIGTERM');
    for (const s of servers) expect((await s.exited).code).toBe(0);
  }, 180_000);
});

describe.concurrent('npm run migrate', () => {
  it('exits 1 with one line naming the setting when the database cannot be used', async () => {
    const run = await runMigrate({ DATABASE_MIGRATION_URL: adminUrlFor('tt_no_such_database'), DB_CONNECT_DEADLINE_MS: '2000' });
    expect(run.code).toBe(1);
    const failed = run.lines.find((l) => l.level === 'error' && String(l.msg).startsWith('migration failed'));
    expect(failed?.msg).toMatch(/the database does not exist: check DATABASE_URL/);
  });

  it('exits 1 before connecting when the configuration is invalid', async () => {
    const run = await runMigrate({ DATABASE_URL: 'postgres://127.0.0.1:1/x', DB_PGBOUNCER: 'true' });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^Invalid DB_PGBOUNCER .*DATABASE_MIGRATION_URL/);
  });

  it('migrates the embedded PostgreSQL when no database is configured', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tt-migrate-embedded-'));
    await chmod(dir, 0o755);
    try {
      const run = await runMigrate({ EMBEDDED_PG_DATA_DIR: path.join(dir, 'pg') }, 120_000);
      expect(run.code, run.stderr + JSON.stringify(run.lines.slice(-3))).toBe(0);
      expect((run.lines.find((l) => l.msg === 'migrations applied')?.applied as string[]).length).toBeGreaterThanOrEqual(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 150_000);
});
