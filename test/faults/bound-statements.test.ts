/**
 * The ORM's statements go with bind parameters (src/db/driver.ts, `execute`): MikroORM hands the driver a text with
 * `?` placeholders and the values it would inline (`platform.formatQuery`); the driver sends `$n` and the values,
 * and they must mean what the inlined literals meant (same rows, same JavaScript values and types). Outside a
 * transaction they run as named prepared statements, inside one on MikroORM's transaction; a statement that cannot
 * be bound runs inlined. `query()` (src/db/sql.ts) takes the same path, inside `em.transactional` too.
 */
import { inspect } from 'node:util';
import fc from 'fast-check';
import type { PoolClient } from 'pg';
import { describe, expect, it } from 'vitest';
import { raw } from '@mikro-orm/core';
import type { MikroORM, PostgreSqlPlatform } from '@mikro-orm/postgresql';
import { bindStatement } from '../../src/db/driver.js';
import { query, sql } from '../../src/db/sql.js';
import { TransactionRunner } from '../../src/db/transaction.js';
import { OperationRegistry } from '../../src/lifecycle/operations.js';
import { Task } from '../../src/tasks/task.entity.js';
import { useServer } from '../helpers/server.js';

const { server } = useServer('bound_statements', { DB_POOL_MIN: '2', DB_POOL_MAX: '2' });

const orm = (): MikroORM => {
  const o = server.app.orm();
  if (!o) throw new Error('the server has no ORM');
  return o;
};

/** Runs `text` with `params` bound (the driver's path) and with them inlined by formatQuery: the rows must match. */
async function sameAsInlined(text: string, params: unknown[]): Promise<Array<Record<string, unknown>>> {
  const connection = orm().em.getConnection();
  const inlined = orm().em.getPlatform().formatQuery(text, params);
  // Without parameters a text goes as it is: this is the statement MikroORM used to send.
  const expected = await connection.execute<Array<Record<string, unknown>>>(inlined);
  const actual = await connection.execute<Array<Record<string, unknown>>>(text, params);
  expect(actual, `${text} with ${inspect(params)}`).toEqual(expected);
  return actual;
}

/** The statements prepared on each of the server's two pooled connections (both held at once, so both are seen). */
async function preparedTexts(): Promise<string[]> {
  const pool = await orm().em.getConnection().getNativeClient();
  const connections: PoolClient[] = await Promise.all([pool.connect(), pool.connect()]);
  try {
    const lists = await Promise.all(connections.map((c) => c.query<{ statement: string }>("select statement from pg_prepared_statements where name like 'tt\\_%'")));
    return lists.flatMap((l) => l.rows.map((r) => r.statement));
  } finally {
    for (const c of connections) c.release();
  }
}

describe('ORM statements with bind parameters', () => {
  it('binds each kind of value so that it means what the inlined literal meant', async () => {
    const platform = orm().em.getPlatform() as PostgreSqlPlatform;
    const values: unknown[] = [
      'plain', "it's", 'back\\slash', '', 'ünïcødé ✓', '?', '$1',
      0, 5, -7, 2147483647, 2147483648, -2147483648, 9007199254740991, 0.5, -1.25, 1e21, 1e-7,
      true, false, null,
      new Date('2024-02-29T12:34:56.789Z'), 12345678901234567890n, Buffer.from([0, 1, 254, 255]),
      { a: 1, b: [true, null], c: "q'uote" }, platform.cloneEmbeddable([1, 'two']),
    ];
    for (const value of values) await sameAsInlined('select ? as v', [value]);

    // What the text becomes: casts where a literal had a type, the LIMIT written in, lists spread, fragments inlined.
    expect(bindStatement(platform, 'select ? as a, ? as b, ? as c, ? as d from t limit ?', ['x', 5, 0.5, true, 10])).toEqual({
      text: 'select $1 as a, $2::int4 as b, $3::numeric as c, $4::bool as d from t limit 10',
      values: ['x', 5, 0.5, true],
    });
    expect(bindStatement(platform, 'select * from t where id in (?) and n = ?', [['a', 'b'], 3_000_000_000])).toEqual({
      text: 'select * from t where id in ($1, $2) and n = $3::int8',
      values: ['a', 'b', 3_000_000_000],
    });
    expect(bindStatement(platform, 'update t set v = ?, w = ? where ?? = ?', [raw('v + ?', [1]), raw('default'), 'k', 'x'])).toEqual({
      text: 'update t set v = v + $1::int4, w = default where "k" = $2',
      values: [1, 'x'],
    });

    await sameAsInlined('select ? + 1 as v', [raw('? * 2', [21])]);
    await sameAsInlined('select ?? as v from (select 1 as "x y") s', ['x y']);
    await sameAsInlined('select 2 in (?) as v, ? as w', [[1, 2, 3], 'w']);
    await sameAsInlined(`select '{"a":1}'::jsonb \\? 'a' as v, ? as w`, ['w']);
    await sameAsInlined('select ?::jsonb as v', [JSON.stringify({ k: ['v'] })]);
    await sameAsInlined('select * from (values (1), (2), (3)) x(v) order by v limit ?', [2]);
  });

  it('binds generated strings, numbers and dates as their literals would read', async () => {
    const text = fc.string({ unit: 'binary', maxLength: 30 }).filter((s) => !s.includes('\u0000'));
    const number = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }), fc.constantFrom(2 ** 60, -(2 ** 63), 2 ** 63, 1e20, -2147483648));
    const date = fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true });
    await fc.assert(
      fc.asyncProperty(fc.oneof(text, number, date, fc.boolean()), async (value) => {
        await sameAsInlined('select ? as v', [value]);
      }),
      { numRuns: 150, seed: 20261206 },
    );
  });

  it('runs the ORM\'s statements as named prepared statements, outside transactions and inside them', async () => {
    const em = orm().em.fork();
    const task = em.create(Task, { id: crypto.randomUUID(), title: 'bound', type: 'FEATURE', priority: 'LOW', createdBy: 'test', createdAt: new Date(), updatedAt: new Date() });
    await em.flush();
    for (let i = 0; i < 3; i++) expect((await orm().em.fork().findOne(Task, task.id))?.title).toBe('bound');
    await orm().em.fork().transactional(async (tem) => {
      const found = await tem.findOneOrFail(Task, task.id);
      found.title = 'bound again';
    });
    const texts = await preparedTexts();
    expect(texts).toContain('select "t0".* from "task" as "t0" where "t0"."id" = $1 limit 1');
    // The flush's insert and update ran in MikroORM's transactions, prepared on the transaction's connection.
    expect(texts.some((t) => t.startsWith('insert into "task"'))).toBe(true);
    expect(texts.some((t) => t.startsWith('update "task"'))).toBe(true);
    expect((await orm().em.fork().findOneOrFail(Task, task.id)).title).toBe('bound again');
  });

  it('runs query() on MikroORM\'s transaction inside em.transactional', async () => {
    const em = orm().em.fork();
    const task = em.create(Task, { id: crypto.randomUUID(), title: 'before', type: 'FEATURE', priority: 'LOW', createdBy: 'test', createdAt: new Date(), updatedAt: new Date() });
    await em.flush();
    const rolledBack = new Error('roll back');
    await expect(
      orm().em.fork().transactional(async (tem) => {
        const [ours] = await query<{ pid: number }>(tem, sql`select pg_backend_pid() as pid`);
        const [orms] = await tem.execute<Array<{ pid: number }>>('select pg_backend_pid() as pid');
        expect(ours?.pid).toBe(orms?.pid);
        await query(tem, sql`update task set title = ${'inside'} where id = ${task.id}`);
        expect((await tem.findOneOrFail(Task, task.id, { refresh: true })).title).toBe('inside');
        throw rolledBack;
      }),
    ).rejects.toBe(rolledBack);
    // The update was the transaction's: rolled back with it.
    expect((await query<{ title: string }>(orm().em.fork(), sql`select title from task where id = ${task.id}`))[0]?.title).toBe('before');
  });

  it('sends a statement it cannot bind, or one PostgreSQL cannot type when bound, with its values inlined', async () => {
    const connection = orm().em.getConnection();
    // A value formatQuery writes with its toString (not a literal): MikroORM's own path.
    const answer = new (class Answer {
      toString(): string {
        return '42';
      }
    })();
    expect(await connection.execute('select ? as v', [answer])).toEqual([{ v: 42 }]);
    // Several statements in one text: the simple protocol, as before.
    expect(await connection.execute('select ? as v; select 2 as w', [1])).toEqual([]);

    // pg_typeof takes "any": PostgreSQL cannot type a bound string there (42P18); the inlined literal is `unknown`.
    const mark = server.logs.length;
    expect(await connection.execute('select pg_typeof(?)::text as t', ['text'])).toEqual([{ t: 'unknown' }]);
    expect(await connection.execute('select pg_typeof(?)::text as t', ['again'])).toEqual([{ t: 'unknown' }]);
    expect(server.logs.slice(mark).filter((l) => String(l.msg).startsWith('PostgreSQL cannot type a parameter'))).toHaveLength(1);

    // Inside a transaction the failure aborts it (to be run again whole); the text runs inlined from then on.
    const typeIn = (em: ReturnType<MikroORM['em']['fork']>) => em.transactional((tem) => tem.execute<Array<{ t: string }>>('select pg_typeof(?)::text as t2', ['x']));
    await expect(typeIn(orm().em.fork())).rejects.toMatchObject({ code: '42P18' });
    expect(await typeIn(orm().em.fork())).toEqual([{ t2: 'unknown' }]);

    // Through the TransactionRunner, which runs the transaction again whole: inlined the second time.
    const runner = new TransactionRunner({ log: server.app.log, operations: new OperationRegistry(), leakWarningMs: 60_000 });
    const typed = await runner.run(orm().em.fork(), (tx) => query<{ t3: string }>(tx, sql`select pg_typeof(${'y'})::text as t3`));
    expect(typed).toEqual([{ t3: 'unknown' }]);
  });
});
