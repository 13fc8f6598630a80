/**
 * Error masking audit: each kind of internal failure, forced for real (no mocks), reaches the client as its code
 * and a safe message only, while the log has the detail under the request id.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { startServer, useServer, waitFor, type GqlResponse, type TestServer } from '../helpers/server.js';

const { db, server } = useServer('masking');

/** What no client should read: SQL, PostgreSQL's and the driver's wording, ORM internals, paths, stacks. */
const LEAK =
  /\b(select|insert|update|delete|alter)\b.*\b(from|into|set|table|where)\b|relation|constraint|violat|column|syntax|sqlstate|postgres|pg_|kysely|mikro|ValidationError|TypeError|infinity|canceling|node_modules|\.ts:\d|\bat [\w.<>]+ \(|stack/i;

/** Asserts the response holds one error with exactly `code`, a message that leaks nothing, and no stack. */
function expectSafe(res: GqlResponse, code: string, extra: Record<string, unknown> = {}): string {
  expect(res.status).toBeLessThan(code === 'SERVICE_UNAVAILABLE' ? 600 : 500);
  const errors = res.body.errors ?? [];
  expect(errors).toHaveLength(1);
  const { message, extensions } = errors[0]!;
  expect(extensions).toEqual({ code, ...extra });
  expect(message).not.toMatch(LEAK);
  // Nothing else may ride along: only the path and locations (the client's own operation) besides these.
  expect(Object.keys(errors[0]!).filter((k) => k !== 'path' && k !== 'locations').sort()).toEqual(['extensions', 'message']);
  expect(Object.keys(res.body).sort()).toEqual(['data', 'errors']);
  return message;
}

/** The ERROR line the server logged for request `requestId`, as text. */
async function loggedFor(target: TestServer, requestId: string, level = 'error'): Promise<string> {
  const line = await waitFor(() => target.logs.find((l) => l.requestId === requestId && l.level === level), `the ${level} line of ${requestId}`);
  return JSON.stringify(line);
}

async function counts(): Promise<{ tasks: number; events: number }> {
  const c = await db.client();
  const { rows } = await c.query<{ tasks: number; events: number }>(
    'select (select count(*)::int from task) as tasks, (select count(*)::int from task_event) as events',
  );
  return rows[0]!;
}

async function createTask(target: TestServer, title: string): Promise<string> {
  const res = await target.gql<{ createTask: { id: string } }>('mutation($t: String!) { createTask(input: { title: $t }) { id } }', { t: title });
  return res.body.data!.createTask.id;
}

describe('error masking', () => {
  it('masks a constraint violation the service does not check first', async () => {
    const c = await db.client();
    await c.query(`alter table task add constraint masking_probe_check check (title <> 'Trips the probe')`);
    try {
      const before = await counts();
      const requestId = `mask-constraint-${randomUUID()}`;
      const res = await server.gql('mutation { createTask(input: { title: "Trips the probe" }) { id } }', {}, { 'x-request-id': requestId });
      expect(expectSafe(res, 'INTERNAL_SERVER_ERROR')).toBe('Internal server error');
      expect(await counts()).toEqual(before);
      expect(await loggedFor(server, requestId)).toMatch(/masking_probe_check/);
    } finally {
      await c.query('alter table task drop constraint masking_probe_check');
    }
  });

  it('masks a driver error (a table gone), and the mutation leaves nothing behind', async () => {
    const c = await db.client();
    const before = await counts();
    await c.query('alter table task_event rename to task_event_gone');
    try {
      const requestId = `mask-driver-${randomUUID()}`;
      const res = await server.gql('mutation { createTask(input: { title: "Event table gone" }) { id } }', {}, { 'x-request-id': requestId });
      expect(expectSafe(res, 'INTERNAL_SERVER_ERROR')).toBe('Internal server error');
      expect(await loggedFor(server, requestId)).toMatch(/relation \\"task_event\\" does not exist/);
    } finally {
      await c.query('alter table task_event_gone rename to task_event');
    }
    expect(await counts()).toEqual(before);
  });

  it('masks errors thrown by code that is not ours: a stored value the entity and the scalars cannot take', async () => {
    const id = await createTask(server, 'Due at infinity');
    const c = await db.client();
    // PostgreSQL stores 'infinity'; MikroORM cannot hydrate it into a Date, and DateTime cannot serialize it.
    await c.query(`update task set due_at = 'infinity' where id = $1`, [id]);
    try {
      const listed = `mask-hydrate-${randomUUID()}`;
      // Cursors are made only when asked for: this page asks for its edges' cursors.
      const list = await server.gql('{ tasks(first: 5, orderBy: [{ field: DUE_AT }]) { edges { cursor node { id } } } }', {}, { 'x-request-id': listed });
      expect(expectSafe(list, 'INTERNAL_SERVER_ERROR')).toBe('Internal server error');
      // Listings read rows without the ORM's hydration (src/tasks/task.record.ts): the cursor refuses the value.
      expect(await loggedFor(server, listed)).toMatch(/ValidationError.*dueAt|Trying to set .*dueAt|Task\.dueAt holds .*not an instant/);

      const read = `mask-serialize-${randomUUID()}`;
      const one = await server.gql(`{ task(id: "${id}") { id dueAt } }`, {}, { 'x-request-id': read });
      expect(expectSafe(one, 'INTERNAL_SERVER_ERROR')).toBe('Internal server error');
      expect(one.body.data).toEqual({ task: { id, dueAt: null } });
      expect(await loggedFor(server, read)).toMatch(/DateTime cannot represent/);

      await c.query(`update task set due_at = null, metadata = '["not", "an", "object"]' where id = $1`, [id]);
      const meta = `mask-json-${randomUUID()}`;
      const json = await server.gql(`{ task(id: "${id}") { metadata } }`, {}, { 'x-request-id': meta });
      expect(expectSafe(json, 'INTERNAL_SERVER_ERROR')).toBe('Internal server error');
      expect(JSON.stringify(json.body)).not.toMatch(/not,an,object/);
      expect(await loggedFor(server, meta)).toMatch(/JSONObject cannot represent non-object value/);
    } finally {
      await c.query(`delete from task where id = $1`, [id]);
    }
  });

  it('answers a statement timeout with SERVICE_UNAVAILABLE and a message without SQL, and changes nothing', async () => {
    const slow = await startServer(db.url, { DB_STATEMENT_TIMEOUT_MS: '300' });
    const c = await db.client();
    try {
      const id = await createTask(slow, 'Held by a lock');
      await c.query('begin');
      await c.query('select id from task where id = $1 for update', [id]);
      const requestId = `mask-timeout-${randomUUID()}`;
      const started = Date.now();
      const res = await slow.gql(`mutation { updateTask(id: "${id}", input: { title: "Never applied" }) { id } }`, {}, { 'x-request-id': requestId });
      expect(Date.now() - started).toBeLessThan(5000);
      const message = expectSafe(res, 'SERVICE_UNAVAILABLE', { reason: 'STATEMENT_TIMEOUT' });
      expect(message).toMatch(/DB_STATEMENT_TIMEOUT_MS/);
      await c.query('rollback');
      const after = await c.query<{ title: string; version: number }>('select title, version from task where id = $1', [id]);
      expect(after.rows[0]).toEqual({ title: 'Held by a lock', version: 1 });
      // Operators see it as the operation's report (metrics): its code and a duration at the timeout.
      const report = await slow.report(requestId);
      expect(report.errorCodes).toEqual(['SERVICE_UNAVAILABLE']);
      expect(report.durationMs).toBeGreaterThanOrEqual(300);
    } finally {
      await c.query('rollback').catch(() => undefined);
      await slow.stop();
    }
  });
});
