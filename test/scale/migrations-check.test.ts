/**
 * The read-only schema check of PgBouncer mode agrees with MikroORM's migrator: the same pending migrations on a
 * fresh database (where it writes nothing), none after `migrate`.
 */
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MikroORM } from '@mikro-orm/postgresql';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { loadConfig } from '../../src/config.js';
import { closeOrm, createOrm, migrate, ormOptions } from '../../src/db/orm.js';
import { ENTITIES } from '../../src/entities.js';
import { pendingMigrations } from '../../src/db/migrations-check.js';
import { OperationRegistry } from '../../src/lifecycle/operations.js';

describe('the schema check (pendingMigrations)', () => {
  let db: TestDatabase | undefined;
  let orm: MikroORM | undefined;
  const log = pino({ level: 'silent' });

  beforeAll(async () => {
    db = await createTestDatabase('migrations_check');
    const config = loadConfig({ DATABASE_URL: db.url, DB_POOL_MIN: '0' });
    orm = await createOrm(ormOptions({ database: config.database, entities: ENTITIES, clientUrl: db.url, log, operations: new OperationRegistry(), direct: true }));
  });
  afterAll(async () => {
    if (orm) await closeOrm(orm, 5000);
    await db?.drop();
  });

  it('lists what the migrator would apply, writes nothing, and finds nothing left after migrate', async () => {
    const ours = await pendingMigrations(orm!);
    const c = new pg.Client({ connectionString: db!.url });
    await c.connect();
    try {
      const { rows } = await c.query<{ m: string | null }>("select to_regclass('mikro_orm_migrations')::text as m");
      expect(rows[0]!.m).toBeNull();
    } finally {
      await c.end();
    }
    const theirs = (await orm!.migrator.getPending()).map((m) => m.name);
    expect(ours.length).toBeGreaterThanOrEqual(2);
    expect(ours).toEqual(theirs);
    const applied = await migrate(orm!, log);
    expect(applied).toEqual(ours);
    expect(await pendingMigrations(orm!)).toEqual([]);
  });
});
