/**
 * Every benchmarked read uses an index: on the benchmark's own dataset (bench/seed.ts, 20,000 tasks here) each
 * SQL statement that Q1-Q4 send is planned with EXPLAIN, and no plan may scan the `task` table sequentially.
 *
 * The statements are the real ones: the server runs at LOG_LEVEL=debug and we take the `sql` log lines carrying
 * the operation's request id. Statements built with bind parameters are logged with `?` placeholders, so their
 * values are captured where they are sent: on each pg connection the server's pool lends (hand-written SQL runs on
 * it directly, src/db/sql.ts; the ORM's statements through Kysely end there too), and the plan is made with those
 * values, as PostgreSQL planned the real execution.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { ASSIGNEES, seedTasks } from '../../bench/seed.js';
import { DEEP_PAGE_ROWS, readBody, walkDeepCursor, type ReadFixtures, type ReadName } from '../../bench/operations.js';

const TASKS = 20_000;

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

/** Every node of a plan tree. */
function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

/** `?` placeholders to PostgreSQL's `$n`, as src/db/sql.ts sends them (`\?` is a literal question mark). */
function positional(text: string): string {
  let n = 0;
  return text.replace(/\\\?|\?/g, (m) => (m === '?' ? `$${++n}` : '?'));
}

/** A pg connection of the server's pool, as far as the capture touches it. */
interface Capturable {
  captured?: boolean;
  query: (config: unknown, ...rest: unknown[]) => unknown;
}

let db: TestDatabase;
let server: TestServer;
let client: pg.Client;
let fixtures: ReadFixtures;
/** Statements as the pg connections were given them: placeholders already `$n`, values in `bindings`. */
const sent: Array<{ sql: string; bindings: unknown[] }> = [];

beforeAll(async () => {
  db = await createTestDatabase('bench_explain');
  server = await startServer(db.url, { LOG_LEVEL: 'debug' }); // migrates the database
  client = await db.client();
  const seeded = await seedTasks(client, { tasks: TASKS, seed: 42 }); // ends with VACUUM ANALYZE
  const orm = server.app.orm();
  if (!orm) throw new Error('the server has no ORM after boot');
  // Every connection the pool lends from now on reports what it is asked to run (wrapped once per connection):
  // `query({ text, values })` from src/db/sql.ts, `query(text, values)` from MikroORM (Kysely).
  const pool = await orm.em.getConnection().getNativeClient();
  pool.on('acquire', (client) => {
    const connection = client as unknown as Capturable;
    if (connection.captured) return;
    connection.captured = true;
    const query = connection.query.bind(connection);
    connection.query = (config: unknown, ...rest: unknown[]) => {
      if (typeof config === 'object' && config !== null && 'text' in config) {
        const { text, values } = config as { text: string; values?: unknown[] };
        sent.push({ sql: text, bindings: values ?? [] });
      } else if (typeof config === 'string') {
        sent.push({ sql: config, bindings: Array.isArray(rest[0]) ? (rest[0] as unknown[]) : [] });
      }
      return query(config, ...rest);
    };
  });
  fixtures = { taskIds: seeded.taskIds, assignees: ASSIGNEES, deepCursor: await walkDeepCursor(server.url, DEEP_PAGE_ROWS) };
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

/** Sends the benchmark's first request of `op` and returns the statements it ran, with their parameters. */
async function statementsOf(op: ReadName): Promise<Array<{ text: string; values: unknown[] }>> {
  const requestId = `explain-${op}`;
  sent.length = 0;
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId },
    body: readBody(op, fixtures, 0),
  });
  const body = (await res.json()) as { data?: unknown; errors?: unknown };
  expect(res.status).toBe(200);
  expect(body.errors).toBeUndefined();
  await server.report(requestId); // every statement of the operation has run and been logged
  const logged = server.logs.filter((l) => l.msg === 'sql' && l.requestId === requestId).map((l) => String(l.sql));
  expect(logged.length).toBeGreaterThan(0);
  return logged.map((text) => {
    // MikroORM inlines its values into the logged text; our own statements carry `?` and bind parameters.
    const raw = sent.find((s) => s.sql === positional(text) && s.bindings.length > 0);
    return raw ? { text: raw.sql, values: raw.bindings } : { text, values: [] };
  });
}

async function plan(statement: { text: string; values: unknown[] }): Promise<PlanNode[]> {
  const { rows } = await client.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`explain (format json) ${statement.text}`, statement.values);
  const root = rows[0]?.['QUERY PLAN'][0]?.Plan;
  if (!root) throw new Error(`no plan for ${statement.text}`);
  return nodes(root);
}

describe('benchmark reads on the seeded dataset', () => {
  it.each(['Q1', 'Q2', 'Q3', 'Q4'] as const)('%s reads task through an index, never a sequential scan', async (op) => {
    const statements = await statementsOf(op);
    let indexed = 0;
    for (const statement of statements) {
      const planNodes = await plan(statement);
      const seqScans = planNodes.filter((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'task');
      expect(seqScans, `sequential scan of task in ${op}: ${statement.text}`).toEqual([]);
      if (planNodes.some((n) => n['Index Name'] !== undefined)) indexed++;
    }
    // Every statement of the operation reads through some index (of task, or of task_dependency for edges).
    expect(indexed, `${op}: ${statements.map((s) => s.text).join('\n')}`).toBe(statements.length);
  });
});

describe('Q3 (an assignee, newest first, with totalCount)', () => {
  it('reads its page and its count through the partial (assignee, created_at, id) index', async () => {
    // The log lines of the test above share the request id: each statement once.
    const statements = [...new Map((await statementsOf('Q3')).map((s) => [s.text, s])).values()];
    // One statement: the count is a subquery of the page's.
    expect(statements).toHaveLength(1);
    for (const statement of statements) {
      const planNodes = await plan(statement);
      // Without it, the count visits every row of the assignee (and the page sorts them all): both the page's scan
      // and the count's use it.
      const uses = planNodes.filter((n) => n['Index Name'] === 'task_assignee_created_at_id_idx');
      expect(uses.length, statement.text).toBe(2);
    }
  });
});
