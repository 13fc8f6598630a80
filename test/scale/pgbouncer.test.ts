/**
 * The server behind a real PgBouncer in transaction pooling (DB_PGBOUNCER=true): it boots not ready until
 * `npm run migrate` has run on the direct URL, serves the core operations, sets its statement timeout per
 * transaction, and leaves no session state on PgBouncer's server connections. PgBouncer refuses every startup
 * parameter but application_name here (ignore_startup_parameters is empty), so one sent by the server fails the test.
 */
import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';
import { pgbouncerMissing, startPgBouncer, type PgBouncer } from '../helpers/pgbouncer.js';
import { skipWithout } from '../helpers/ci.js';
import { runMigrate } from '../helpers/migrate.js';
import { TransactionRunner } from '../../src/db/transaction.js';
import { OperationRegistry } from '../../src/lifecycle/operations.js';
import { LockMode, raw } from '@mikro-orm/core';
import { PROJECT_ROOT as ROOT } from '../../src/db/orm.js';
import { Task } from '../../src/tasks/task.entity.js';

const POOL_SIZE = 4;
const STATEMENT_TIMEOUT_MS = 1500;

describe.skipIf(skipWithout(pgbouncerMissing))(`behind PgBouncer (transaction pooling)${pgbouncerMissing ? `: skipped, ${pgbouncerMissing}` : ''}`, () => {
  let bouncer: PgBouncer | undefined;
  let db: TestDatabase | undefined;
  let server: TestServer | undefined;
  const live = () => ({ bouncer: bouncer!, db: db!, server: server! });
  const bouncerOf = () => bouncer!;
  const dbOf = () => db!;

  beforeAll(async () => {
    db = await createTestDatabase('pgbouncer');
    bouncer = await startPgBouncer({ backendUrl: inject('adminUrl'), poolSize: POOL_SIZE });
  });
  afterAll(async () => {
    await server?.stop();
    await bouncer?.stop();
    await db?.drop();
  });

  /** A client of the test database through PgBouncer. */
  async function bouncerClient(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: live().bouncer.url(live().db.name), application_name: 'tt-probe' });
    await c.connect();
    return c;
  }

  it('boots not ready while migrations are pending, naming `npm run migrate`, and is ready once it ran on the direct URL', async () => {
    const { bouncer, db } = { bouncer: bouncerOf(), db: dbOf() };
    server = await startServer(
      bouncer.url(db.name),
      { DB_PGBOUNCER: 'true', DATABASE_MIGRATION_URL: db.url, DB_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS), DB_APPLICATION_NAME: 'tt-pgbouncer' },
      false,
    );
    const notReady = await waitFor(async () => {
      const res = await fetch(`${server!.url}/readyz`);
      const body = (await res.json()) as { reason?: string };
      return res.status === 503 && body.reason?.includes('npm run migrate') ? body : undefined;
    }, 'readiness to name the pending migrations');
    expect(notReady.reason).toMatch(/^\d+ pending migration\(s\): run `npm run migrate`/);
    expect(server.logs.some((l) => l.level === 'error' && String(l.msg).startsWith('schema is behind the code'))).toBe(true);
    // The waiting server wrote nothing: no migrations table, no tables.
    const direct = await db.client();
    const { rows: before } = await direct.query<{ t: string | null; m: string | null }>("select to_regclass('task')::text as t, to_regclass('mikro_orm_migrations')::text as m");
    expect(before[0]).toEqual({ t: null, m: null });

    const run = await runMigrate({ DATABASE_URL: bouncer.url(db.name), DB_PGBOUNCER: 'true', DATABASE_MIGRATION_URL: db.url });
    expect(run.code, run.stderr).toBe(0);
    const migrations = (await readdir(path.join(ROOT, 'migrations'))).flatMap((f) => /^(Migration\d+(?:_\w+)?)\.ts$/.exec(f)?.[1] ?? []).sort();
    expect(migrations.length).toBeGreaterThanOrEqual(2);
    expect(run.lines.find((l) => l.msg === 'migrations applied')?.applied).toEqual(migrations);

    await server.app.ready;
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    // The database's default statement_timeout (none) is not DB_STATEMENT_TIMEOUT_MS: the operator is told the fix.
    expect(server.logs.find((l) => l.level === 'warn' && String(l.msg).includes('ALTER ROLE'))).toMatchObject({ defaultStatementTimeoutMs: 0, expectedMs: STATEMENT_TIMEOUT_MS });
    const { rows } = await direct.query<{ n: number }>('select count(*)::int as n from mikro_orm_migrations');
    expect(rows[0]!.n).toBe(migrations.length);
    // A second run finds nothing to do.
    const again = await runMigrate({ DATABASE_MIGRATION_URL: db.url });
    expect(again.code).toBe(0);
    expect(again.lines.find((l) => l.msg === 'schema is up to date')?.applied).toEqual([]);
  });

  it('runs the core operations through PgBouncer', async () => {
    const { server } = live();
    const ok = async <T,>(q: string, variables?: Record<string, unknown>): Promise<T> => {
      const res = await server.gql<T>(q, variables);
      expect(res.body.errors, JSON.stringify(res.body.errors)).toBeUndefined();
      return res.body.data!;
    };
    // create (a client id makes it idempotent), update with a version
    const [a, b] = [randomUUID(), randomUUID()];
    await ok(`mutation($a: ID!, $b: ID!) { a: createTask(input: { id: $a, title: "Design", priority: HIGH, tags: ["pgb"], assignee: "ada" }) { id }
      b: createTask(input: { id: $b, title: "Build", tags: ["pgb"] }) { id } }`, { a, b });
    const again = await ok<{ createTask: { version: number } }>('mutation($a: ID!) { createTask(input: { id: $a, title: "Design" }) { version } }', { a });
    expect(again.createTask.version).toBe(1);
    const updated = await ok<{ updateTask: { title: string; version: number } }>(
      'mutation($a: ID!) { updateTask(id: $a, input: { title: "Design the schema" }, expectedVersion: 1) { title version } }', { a });
    expect(updated.updateTask).toEqual({ title: 'Design the schema', version: 2 });

    // dependencies and the status machine
    const dep = await ok<{ addTaskDependency: { isBlocked: boolean } }>('mutation($a: ID!, $b: ID!) { addTaskDependency(taskId: $b, dependsOnId: $a) { isBlocked } }', { a, b });
    expect(dep.addTaskDependency.isBlocked).toBe(true);
    const blocked = await server.gql('mutation($b: ID!) { startTask(id: $b) { status } }', { b });
    expect(blocked.body.errors?.[0]?.extensions?.code).toBe('BLOCKED_BY_DEPENDENCY');
    await ok('mutation($a: ID!) { startTask(id: $a) { status } }', { a });
    await ok('mutation($a: ID!) { reportProgress(id: $a, progress: 0.5, message: "halfway") { progress } }', { a });
    const done = await ok<{ completeTask: { status: string; progress: number } }>('mutation($a: ID!) { completeTask(id: $a, result: "ok") { status progress } }', { a });
    expect(done.completeTask).toEqual({ status: 'COMPLETED', progress: 1 });
    await ok('mutation($b: ID!) { startTask(id: $b) { status } }', { b });

    // batches
    const many = await ok<{ createTasks: Array<{ id: string }> }>('mutation($inputs: [CreateTaskInput!]!) { createTasks(inputs: $inputs) { id } }', {
      inputs: Array.from({ length: 12 }, (_, i) => ({ title: `batch ${i}`, tags: ['batch'], priority: i % 2 ? 'LOW' : 'CRITICAL' })),
    });
    const ids = many.createTasks.map((t) => t.id);
    const bulk = await ok<{ updateTasks: Array<{ assignee: string }> }>('mutation($ids: [ID!]!) { updateTasks(ids: $ids, input: { assignee: "bob" }) { assignee } }', { ids });
    expect(bulk.updateTasks.every((t) => t.assignee === 'bob')).toBe(true);

    // listing with a filter, page by page
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: { tasks: { totalCount: number; nodes: Array<{ id: string; priority: string }>; pageInfo: { hasNextPage: boolean; endCursor: string | null } } } = await ok(
        'query($after: String) { tasks(first: 4, after: $after, filter: { tagsAny: ["batch"], priority: [CRITICAL] }, orderBy: [{ field: TITLE, direction: ASC }]) { totalCount nodes { id priority } pageInfo { hasNextPage endCursor } } }',
        { after },
      );
      expect(page.tasks.totalCount).toBe(6);
      seen.push(...page.tasks.nodes.map((n) => n.id));
      if (!page.tasks.pageInfo.hasNextPage) break;
      after = page.tasks.pageInfo.endCursor;
    }
    expect(new Set(seen).size).toBe(6);

    // statistics and the change feed
    const stats = await ok<{ taskStatistics: { total: number; byStatus: Array<{ status: string; count: number }> } }>(
      '{ taskStatistics { total byStatus { status count } } }');
    expect(stats.taskStatistics.total).toBe(14);
    expect(stats.taskStatistics.byStatus).toEqual(expect.arrayContaining([{ status: 'COMPLETED', count: 1 }, { status: 'IN_PROGRESS', count: 1 }]));
    // One event per version of each task. The feed shows an event once no older transaction of the cluster is still
    // running (other test files share it), so wait for it rather than expect it at once.
    const all = await ok<{ tasks: { nodes: Array<{ version: number }> } }>('{ tasks(first: 100) { nodes { version } } }');
    const events = all.tasks.nodes.reduce((sum, t) => sum + t.version, 0);
    const feed = await waitFor(async () => {
      const page = await ok<{ taskEvents: { nodes: Array<{ kind: string; taskId: string }> } }>('{ taskEvents(first: 100) { nodes { kind taskId } } }');
      return page.taskEvents.nodes.length === events ? page : undefined;
    }, `the feed to show all ${events} events`);
    expect(feed.taskEvents.nodes.filter((e) => e.taskId === a).map((e) => e.kind)).toEqual(
      expect.arrayContaining(['CREATED', 'UPDATED', 'STATUS_CHANGED']),
    );

    // concurrent updates with the same expected version: exactly one wins
    const racers = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        server.gql('mutation($b: ID!, $t: String!) { updateTask(id: $b, input: { title: $t }, expectedVersion: 3) { version } }', { b, t: `racer ${i}` }),
      ),
    );
    const codes = racers.map((r) => r.body.errors?.[0]?.extensions?.code ?? 'OK');
    expect(codes.filter((c) => c === 'OK')).toHaveLength(1);
    expect(codes.filter((c) => c === 'VERSION_CONFLICT')).toHaveLength(5);
  });

  it('runs a transaction again after a deadlock, through PgBouncer, applying each change once', async () => {
    const { server } = live();
    const make = async (title: string) =>
      (await server.gql<{ createTask: { id: string } }>('mutation($t: String!) { createTask(input: { title: $t }) { id } }', { t: title })).body.data!.createTask.id;
    const [x, y] = [await make('x'), await make('y')];
    const orm = server.app.orm()!;
    const runner = new TransactionRunner({ log: server.app.log, operations: new OperationRegistry(), leakWarningMs: 60_000, localStatementTimeoutMs: 10_000 });
    const attempts = { first: 0, second: 0 };
    let release: () => void = () => undefined;
    let holding = 0;
    const barrier = new Promise<void>((resolve) => (release = resolve));
    const crossed = (first: string, second: string, key: 'first' | 'second') =>
      runner.run(orm.em.fork(), async (tx) => {
        attempts[key]++;
        await tx.findOneOrFail(Task, first, { lockMode: LockMode.PESSIMISTIC_WRITE });
        if (attempts[key] === 1) {
          if (++holding === 2) release();
          await barrier;
        }
        await tx.findOneOrFail(Task, second, { lockMode: LockMode.PESSIMISTIC_WRITE });
        await tx.nativeUpdate(Task, { id: first }, { retryCount: raw('retry_count + 1') });
      });
    await Promise.all([crossed(x, y, 'first'), crossed(y, x, 'second')]);
    expect(attempts.first + attempts.second).toBe(3);
    const { rows } = await (await live().db.client()).query<{ n: number }>('select sum(retry_count)::int as n from task where id = any($1)', [[x, y]]);
    expect(rows[0]!.n).toBe(2);
  });

  it('sets DB_STATEMENT_TIMEOUT_MS per transaction (SET LOCAL): a statement waiting on a lock is cancelled by it', async () => {
    const { server, db } = live();
    const id = (await server.gql<{ createTask: { id: string } }>('mutation { createTask(input: { title: "locked" }) { id } }')).body.data!.createTask.id;
    const locker = await db.client();
    // The database's own default is no timeout: only the server's SET LOCAL can cancel the wait.
    expect((await locker.query<{ statement_timeout: string }>('show statement_timeout')).rows[0]!.statement_timeout).toBe('0');
    await locker.query('begin');
    try {
      await locker.query('select 1 from task where id = $1 for update', [id]);
      const started = Date.now();
      const res = await server.gql('mutation($id: ID!) { updateTask(id: $id, input: { title: "never" }) { title } }', { id });
      const took = Date.now() - started;
      // STATEMENT_TIMEOUT is PostgreSQL's cancel (57014), not the client-side read timeout (1 s later, another reason).
      expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', reason: 'STATEMENT_TIMEOUT' });
      expect(took).toBeGreaterThanOrEqual(STATEMENT_TIMEOUT_MS - 50);
    } finally {
      await locker.query('rollback');
    }
    const { rows } = await locker.query<{ title: string }>('select title from task where id = $1', [id]);
    expect(rows[0]!.title).toBe('locked');
  });

  /** What a server connection can carry from one transaction to the next. */
  interface SessionState {
    pid: number;
    statement_timeout: string;
    /** Settings changed by a session SET, beside those PgBouncer itself tracks and sets per client. */
    settings: string[];
    prepared: number;
    listening: number;
    advisoryLocks: number;
  }

  /**
   * Holds a transaction on every server connection of PgBouncer's pool at once and reads each one's session state
   * (then resets its statement_timeout, so a leak seen here does not outlive the probe).
   */
  async function probePool(): Promise<SessionState[]> {
    const clients = await Promise.all(Array.from({ length: POOL_SIZE }, () => bouncerClient()));
    try {
      const seen = await Promise.all(
        clients.map(async (c) => {
          await c.query('begin');
          const { rows } = await c.query<SessionState>(`select pg_backend_pid() as pid, current_setting('statement_timeout') as statement_timeout,
            array(select name from pg_settings where source = 'session'
                  and name not in ('application_name', 'client_encoding', 'DateStyle', 'TimeZone', 'standard_conforming_strings')
                  order by name) as settings,
            (select count(*)::int from pg_prepared_statements) as prepared,
            (select count(*)::int from pg_listening_channels()) as listening,
            (select count(*)::int from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()) as "advisoryLocks"`);
          return rows[0]!;
        }),
      );
      await Promise.all(clients.map(async (c) => (await c.query('reset statement_timeout'), await c.query('commit'))));
      return seen;
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  }

  it('leaves no session state on PgBouncer\'s server connections (a session SET would show on another client)', async () => {
    const { server } = live();
    // Traffic first, so the server's transactions have run on the pool's connections.
    await Promise.all(Array.from({ length: 8 }, (_, i) => server.gql('mutation($t: String!) { createTask(input: { title: $t }) { id } }', { t: `traffic ${i}` })));
    const after = await probePool();
    expect(new Set(after.map((r) => r.pid)).size).toBe(POOL_SIZE);
    for (const conn of after) expect(conn).toEqual({ pid: conn.pid, statement_timeout: '0', settings: [], prepared: 0, listening: 0, advisoryLocks: 0 });

    // The probe can see a leak: a session SET by one client shows up on the server connection it used.
    const leaker = await bouncerClient();
    await leaker.query("set statement_timeout = '4321ms'");
    await leaker.end();
    const leaked = await probePool();
    expect(leaked.map((r) => r.statement_timeout)).toContain('4321ms');
    expect(leaked.flatMap((r) => r.settings)).toEqual(['statement_timeout']);
    expect((await probePool()).map((r) => r.statement_timeout)).toEqual(Array(POOL_SIZE).fill('0'));
  });

  it('fails the boot with one clear line when DB_PGBOUNCER is off behind PgBouncer', async () => {
    const { bouncer, db } = live();
    const wrong = await startServer(bouncer.url(db.name), {}, false);
    try {
      await expect(wrong.app.ready).rejects.toThrow(/PgBouncer refused the startup parameter statement_timeout: set DB_PGBOUNCER=true/);
    } finally {
      await wrong.stop();
    }
  });
});
