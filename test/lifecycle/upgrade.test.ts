/**
 * Upgrading in place from MikroORM 6: a database that today's server (MikroORM 6.6.16) migrated, with its
 * `mikro_orm_migrations` table as MikroORM 6 wrote it (test/fixtures/mikro-orm-6/), is taken over by this server:
 * the migrations it lacks apply, the ones it has are not run again, and the rows the old server wrote are served
 * and changed. Both fixtures are real: dumps of databases the main branch made before the move.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startServer } from '../helpers/server.js';
import { ROOT } from '../helpers/child.js';

const MIGRATIONS = readdirSync(path.join(ROOT, 'migrations'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.replace(/\.ts$/, ''))
  .sort();

/** The migrations that existed when the fixtures were made: `full` holds all of them, later ones are new to it. */
const MIKRO_ORM_6_MIGRATIONS = MIGRATIONS.slice(0, 4);

const databases: TestDatabase[] = [];
afterAll(async () => {
  for (const db of databases) await db.drop();
});

/** A fresh database holding `fixture` (a pg_dump of a database MikroORM 6 migrated). */
async function restored(fixture: 'partial' | 'full'): Promise<TestDatabase> {
  const db = await createTestDatabase(`upgrade_${fixture}`);
  databases.push(db);
  const c = await db.client();
  await c.query(readFileSync(path.join(ROOT, 'test', 'fixtures', 'mikro-orm-6', `${fixture}.sql`), 'utf8'));
  // An event's xid is its transaction's in the cluster that wrote it (about 12,800 there). Restored into another
  // cluster, whose counter may be lower, they would look like transactions still to come and stay out of the feed:
  // renumbered 3, 4, ... (the first normal xids, in every cluster's past), in their order, as in their own cluster.
  // (Schema-qualified: the dump leaves this session's search_path empty.)
  await c.query(`update public.task_event e set xid = (2 + r.n)::text::xid8
    from (select id, row_number() over (order by xid, id) as n from public.task_event) r where r.id = e.id`);
  await c.end();
  return db;
}

interface MigrationRow {
  id: number;
  name: string;
  executed_at: Date;
}

async function migrationRows(db: TestDatabase): Promise<MigrationRow[]> {
  const c = await db.client();
  try {
    return (await c.query<MigrationRow>('select id, name, executed_at from mikro_orm_migrations order by id')).rows;
  } finally {
    await c.end();
  }
}

describe('a database MikroORM 6 migrated', () => {
  it('with migrations still to apply: applies only those, after the ones MikroORM 6 recorded', async () => {
    const db = await restored('partial');
    const before = await migrationRows(db);
    expect(before.map((r) => r.name)).toEqual(MIGRATIONS.slice(0, 2));

    const server = await startServer(db.url);
    try {
      const line = server.logs.find((l) => l.msg === 'migrations applied');
      expect(line?.applied).toEqual(MIGRATIONS.slice(2));
      const after = await migrationRows(db);
      // MikroORM 6's rows stay as they were; the new ones follow in the same table.
      expect(after.slice(0, 2)).toEqual(before);
      expect(after.map((r) => r.name)).toEqual(MIGRATIONS);
      const created = await server.gql<{ createTask: { title: string } }>('mutation { createTask(input: { title: "after the upgrade" }) { title } }');
      expect(created.body).toEqual({ data: { createTask: { title: 'after the upgrade' } } });
    } finally {
      await server.stop();
    }
  });

  it('with every migration of its time and rows its server wrote: runs only the newer ones, serves and changes those rows', async () => {
    const db = await restored('full');
    const before = await migrationRows(db);
    expect(before.map((r) => r.name)).toEqual(MIKRO_ORM_6_MIGRATIONS);

    const server = await startServer(db.url);
    try {
      const newer = MIGRATIONS.slice(MIKRO_ORM_6_MIGRATIONS.length);
      if (newer.length === 0) expect(server.logs.some((l) => l.msg === 'schema is up to date')).toBe(true);
      else expect(server.logs.find((l) => l.msg === 'migrations applied')?.applied).toEqual(newer);
      const recorded = await migrationRows(db);
      expect(recorded.slice(0, before.length)).toEqual(before);
      expect(recorded.map((r) => r.name)).toEqual(MIGRATIONS);

      const parent = '6b7a1f0e-6c11-4b6e-9a55-000000000001';
      const read = await server.gql<{ task: Record<string, unknown> }>(
        `query($id: ID!) { task(id: $id) { title priority tags version subtasks { nodes { title status result executions { nodes { status } } } } } }`,
        { id: parent },
      );
      expect(read.body.errors).toBeUndefined();
      expect(read.body.data?.task).toEqual({
        title: 'made by MikroORM 6',
        priority: 'HIGH',
        tags: ['v6'],
        version: 1,
        subtasks: { nodes: [{ title: 'its subtask', status: 'COMPLETED', result: 'done on 6', executions: { nodes: [{ status: 'COMPLETED' }] } }] },
      });
      const events = await server.gql<{ taskEvents: { totalCount: number } }>('{ taskEvents(first: 10) { totalCount } }');
      expect(events.body.data?.taskEvents.totalCount).toBe(4);

      const updated = await server.gql<{ updateTask: { title: string; version: number } }>(
        'mutation($id: ID!) { updateTask(id: $id, expectedVersion: 1, input: { title: "changed by MikroORM 7" }) { title version } }',
        { id: parent },
      );
      expect(updated.body).toEqual({ data: { updateTask: { title: 'changed by MikroORM 7', version: 2 } } });
      const after = await server.gql<{ taskEvents: { totalCount: number } }>('{ taskEvents(first: 10) { totalCount } }');
      expect(after.body.data?.taskEvents.totalCount).toBe(5);
    } finally {
      await server.stop();
    }
  });
});
