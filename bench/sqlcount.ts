/**
 * SQL statements per operation. The server has no per-operation counter a client can read, so we ask a
 * short-lived copy of it running with LOG_LEVEL=debug: it logs every statement as a `"msg":"sql"` line, and the
 * statements of an operation carry its request id (which we choose with `x-request-id`). BEGIN and COMMIT are
 * logged without it, so we send one request at a time to an otherwise idle server and count, between two quiet
 * points, the `sql` lines with our id and the transaction control without one (other lines without an id are the
 * server's background reads; a line with another request's id stops the count). The baseline reports
 * its own count in the `x-sql-statements` response header; PostGraphile's server (bench/postgraphile/server.ts)
 * its running total at `GET /sql-statements`, read before and after each request.
 */
import type { OpName } from './options.js';
import type { ChildServer } from './servers.js';
import { responseProblem } from './load.js';
import { body, MIX_SEQUENCE, OUR_DIALECT, type Dialect, type ReadFixtures } from './operations.js';

/** Counts the statements of one request. */
export type SqlCounter = (body: string, requestId: string) => Promise<number>;

export interface SqlCount {
  /** Statements per request (M2: per request of the start/complete pair; MIX: average over its sequence). */
  perRequest: number;
  /** How the number came about, e.g. "4 + 4" for M2. */
  detail: string;
}

async function post(url: string, text: string, requestId: string): Promise<Response> {
  const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': requestId }, body: text });
  const problem = responseProblem(res.status, await res.clone().text());
  if (problem) throw new Error(`SQL count: ${problem} for ${text.slice(0, 200)}: ${(await res.text()).slice(0, 400)}`);
  return res;
}

/** Waits until no log line has arrived for `quietMs`. */
async function quiet(lines: string[], quietMs = 150): Promise<void> {
  let seen = lines.length;
  for (;;) {
    await new Promise((r) => setTimeout(r, quietMs));
    if (lines.length === seen) return;
    seen = lines.length;
  }
}

const CONTROL = /^(begin|commit|rollback|savepoint|release savepoint|rollback to savepoint)\b/i;

/** Counts on our server started with LOG_LEVEL=debug (see the module comment). */
export function logCounter(server: ChildServer): SqlCounter {
  return async (text, requestId) => {
    await quiet(server.lines);
    const mark = server.lines.length;
    await post(server.url, text, requestId);
    await quiet(server.lines);
    const sql = server.lines
      .slice(mark)
      .map((l) => JSON.parse(l) as { msg?: string; sql?: string; requestId?: string })
      .filter((l) => l.msg === 'sql');
    // Transaction control is logged without a request id. So are the server's background reads: the subscription
    // hub reads the change feed after every write's NOTIFY (src/subscriptions/hub.ts), which is not the request's
    // work and not counted. Another request's statement in the window means the server was not idle.
    const control = (l: { sql?: string }) => CONTROL.test(l.sql ?? '');
    const foreign = sql.filter((l) => l.requestId !== undefined && l.requestId !== requestId);
    if (foreign.length) throw new Error(`SQL count: statements of another request in the window: ${JSON.stringify(foreign.slice(0, 3))}`);
    return sql.filter((l) => l.requestId === requestId || (l.requestId === undefined && control(l))).length;
  };
}

/** Counts on the baseline, from its response header. */
export function headerCounter(url: string): SqlCounter {
  return async (text, requestId) => Number((await post(url, text, requestId)).headers.get('x-sql-statements'));
}

/** Counts on PostGraphile's server, from its running total of statements (one request at a time). */
export function totalCounter(url: string): SqlCounter {
  const total = async () => ((await (await fetch(`${url}/sql-statements`)).json()) as { statements: number }).statements;
  return async (text, requestId) => {
    const before = await total();
    await post(url, text, requestId);
    return (await total()) - before;
  };
}

/**
 * Statements per request of each operation, sent in `dialect` (our schema's by default; M2 is skipped in one
 * without startTask/completeTask). `poolTask` hands out fresh PENDING tasks for M2. Each operation is sent once
 * unmeasured first, so one-time work (a first connection, a cold cache) does not count.
 */
export async function sqlPerOperation(
  counter: SqlCounter,
  ops: readonly OpName[],
  f: ReadFixtures,
  poolTask: () => string,
  dialect: Dialect = OUR_DIALECT,
): Promise<Partial<Record<OpName, SqlCount>>> {
  let n = 0;
  const count = (text: string) => counter(text, `bench-sql-${process.pid}-${++n}`);
  const out: Partial<Record<OpName, SqlCount>> = {};
  for (const op of ops) {
    if (op === 'M2') {
      const transitions = dialect.transitions;
      if (!transitions) continue;
      const warm = poolTask();
      await count(transitions.start(warm));
      await count(transitions.complete(warm));
      const id = poolTask();
      const [start, complete] = [await count(transitions.start(id)), await count(transitions.complete(id))];
      out.M2 = { perRequest: (start + complete) / 2, detail: `start ${start} + complete ${complete}` };
    } else if (op === 'MIX') {
      let total = 0;
      for (const [i, name] of MIX_SEQUENCE.entries()) total += await count(name === 'M1' ? dialect.m1Body(1_000_000 + i) : dialect.readBody(name, f, i));
      out.MIX = { perRequest: total / MIX_SEQUENCE.length, detail: `${total} per ${MIX_SEQUENCE.length} requests` };
    } else {
      const make = (i: number) => (op === 'M1' ? dialect.m1Body(2_000_000 + i) : dialect.readBody(op, f, i));
      await count(make(0));
      const statements = await count(make(1));
      out[op] = { perRequest: statements, detail: String(statements) };
    }
  }
  return out;
}

/** Q2's statements at page sizes 10, 50 and 100: the same number means no per-row query (no N+1). */
export async function pageSizeCheck(counter: SqlCounter): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const first of [10, 50, 100]) out[`first: ${first}`] = await counter(body('Q2', { status: ['PENDING', 'IN_PROGRESS'], first }), `bench-page-${first}-${process.pid}`);
  return out;
}
