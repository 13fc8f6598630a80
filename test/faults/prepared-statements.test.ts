/**
 * Hand-written statements run as prepared statements (src/db/driver.ts, statementName): PostgreSQL parses and plans
 * each text once per connection. With a pool of two connections, a read's statement is found prepared on one or
 * both of them, once each, however often the read runs.
 */
import type { PoolClient } from 'pg';
import { describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';

const { db, server } = useServer('prepared_statements', { DB_POOL_MIN: '2', DB_POOL_MAX: '2' });

/** The statements prepared on each of the server's two pooled connections (both held at once, so both are seen). */
async function prepared(): Promise<PreparedRow[]> {
  const connections = await bothConnections();
  try {
    const lists = await Promise.all(connections.map((c) => c.query<PreparedRow>('select name, statement, generic_plans, custom_plans from pg_prepared_statements order by name')));
    return lists.flatMap((l) => l.rows);
  } finally {
    for (const c of connections) c.release();
  }
}

/** Both connections of the server's pool (DB_POOL_MAX=2), checked out of its pg pool at once. */
async function bothConnections(): Promise<PoolClient[]> {
  const pool = await server.app.orm()!.em.getConnection().getNativeClient();
  return Promise.all([pool.connect(), pool.connect()]);
}
interface PreparedRow {
  name: string;
  statement: string;
  /** bigint counters, as text. */
  generic_plans: string;
  custom_plans: string;
}

describe('prepared statements', () => {
  it('prepares each statement text once on a connection, runs it again by name, and settles on the cached plan', async () => {
    const created = await server.gql<{ createTask: { id: string } }>('mutation { createTask(input: { title: "prepared" }) { id } }');
    const id = created.body.data!.createTask.id;
    const read = async () => {
      const res = await server.gql<{ task: { title: string } }>('query($id: ID!) { task(id: $id) { title } }', { id });
      expect(res.body.data!.task.title).toBe('prepared');
    };
    const byId = async () => (await prepared()).filter((p) => p.name.startsWith('tt_') && p.statement.includes('from "task" as "t" where "t"."id" in ($1)'));
    await read();
    const first = await byId();
    expect(first.length).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 20; i++) await read();
    const later = await byId();
    // One name for the text, prepared at most once per connection.
    expect(new Set(later.map((p) => p.name)).size).toBe(1);
    expect(later.length).toBeLessThanOrEqual(2);
    // A lookup of one id is `= $1` to the planner, whose cached generic plan is as cheap as a fresh one: after five
    // runs PostgreSQL stops planning it (an `= any($1)` array never got there: its generic plan assumes ten ids).
    expect(later.reduce((n, p) => n + Number(p.generic_plans), 0)).toBeGreaterThan(0);
  });

  it('lets page statements (tasks, the change feed) settle on PostgreSQL\'s cached generic plan instead of planning every run', async () => {
    // Enough rows that a plan for an unknown LIMIT (PostgreSQL guesses a tenth of the matches) costs more than
    // one for the page's few rows.
    const c = await db.client();
    try {
      await c.query(`insert into task (id, title, type, priority, status, created_by, created_at, updated_at)
        select gen_random_uuid(), 'generic ' || i, 'FEATURE', (array['LOW','MEDIUM','HIGH','CRITICAL'])[1 + i % 4]::task_priority, 'PENDING',
               'seed', now(), now()
        from generate_series(1, 4000) i`);
      await c.query(`insert into task_event (task_id, kind, actor, at) select id, 'CREATED', 'seed', now() from task where created_by = 'seed'`);
      await c.query('analyze task; analyze task_event');
    } finally {
      await c.end();
    }
    const page = '{ tasks(first: 2, filter: { priority: [HIGH] }, orderBy: [{ field: PRIORITY, direction: DESC }]) { nodes { priority } } }';
    // Twelve runs on two connections: at least six on one, and PostgreSQL weighs a generic plan after five custom ones.
    for (let i = 0; i < 12; i++) {
      const res = await server.gql<{ tasks: { nodes: Array<{ priority: string }> } }>(page);
      expect(res.body.errors).toBeUndefined();
      expect(res.body.data!.tasks.nodes).toEqual([{ priority: 'HIGH' }, { priority: 'HIGH' }]);
    }
    const pages = (await prepared()).filter((p) => p.name.startsWith('tt_') && p.statement.includes('t.priority = $1::task_priority'));
    const runs = pages.reduce((n, p) => n + Number(p.generic_plans) + Number(p.custom_plans), 0);
    expect(runs).toBe(12);
    // With the page size bound (`limit $n`) every run was planned afresh; with it in the text the generic plan wins.
    expect(pages.some((p) => Number(p.generic_plans) > 0)).toBe(true);

    // The change feed's pages likewise (the subscription hub reads it with the same kind of statement after writes).
    for (let i = 0; i < 12; i++) {
      const res = await server.gql<{ taskEvents: { nodes: Array<{ kind: string }> } }>('{ taskEvents(last: 2) { nodes { kind } } }');
      expect(res.body.errors).toBeUndefined();
      expect(res.body.data!.taskEvents.nodes).toHaveLength(2);
    }
    const feedPages = (await prepared()).filter((p) => p.statement.startsWith('select e.* from task_event e') && p.statement.includes('desc'));
    expect(feedPages.reduce((n, p) => n + Number(p.generic_plans) + Number(p.custom_plans), 0)).toBe(12);
    expect(feedPages.some((p) => Number(p.generic_plans) > 0)).toBe(true);
  });

  it('keeps working when a migration changes what a prepared `select *` returns, and when the server forgets its statements', async () => {
    const created = await server.gql<{ createTask: { id: string } }>('mutation { createTask(input: { title: "migrated under" }) { id } }');
    const id = created.body.data!.createTask.id;
    const rename = (title: string) =>
      server.gql<{ updateTask: { title: string; version: number } }>('mutation($id: ID!, $t: String!) { updateTask(id: $id, input: { title: $t }) { title version } }', {
        id,
        t: title,
      });
    const feed = () => server.gql<{ taskEvents: { nodes: Array<{ kind: string }> } }>('{ taskEvents(last: 3) { nodes { kind } } }');
    // Prepared on the connections: the lock (select t.* ... for update), the write (returning *), the feed (select e.*).
    for (let i = 0; i < 4; i++) {
      expect((await rename(`before ${i}`)).body.errors).toBeUndefined();
      expect((await feed()).body.errors).toBeUndefined();
    }
    const c = await db.client();
    try {
      // Another instance's migration: the prepared plans' results no longer match (0A000 on their next run).
      await c.query('alter table task add column probe_added int; alter table task_event add column probe_added int');
      for (let i = 0; i < 4; i++) {
        const res = await rename(`after ${i}`);
        expect(res.body.errors).toBeUndefined();
        expect(res.body.data!.updateTask.title).toBe(`after ${i}`);
        expect((await feed()).body.errors).toBeUndefined();
      }
      expect(server.logs.some((l) => String(l.msg).startsWith('a prepared statement no longer matches the schema'))).toBe(true);
    } finally {
      await c.query('alter table task drop column probe_added; alter table task_event drop column probe_added');
      await c.end();
    }
    // A pooler's swap, as the server sees it: the connections' prepared statements are gone behind pg's back.
    const connections = await bothConnections();
    await Promise.all(connections.map((connection) => connection.query('deallocate all')));
    for (const connection of connections) connection.release();
    for (let i = 0; i < 4; i++) {
      expect((await rename(`swapped ${i}`)).body.errors).toBeUndefined();
      const read = await server.gql<{ task: { title: string } }>('query($id: ID!) { task(id: $id) { title } }', { id });
      expect(read.body.data!.task.title).toBe(`swapped ${i}`);
    }
    expect(server.logs.some((l) => String(l.msg).startsWith('prepared statements fail on this database connection'))).toBe(true);
  });
});
