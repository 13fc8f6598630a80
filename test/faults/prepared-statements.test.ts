/**
 * Hand-written statements run as prepared statements (src/db/driver.ts, statementName): PostgreSQL parses and plans
 * each text once per connection. With a pool of two connections, a read's statement is found prepared on one or
 * both of them, once each, however often the read runs.
 */
import { describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';

const { server } = useServer('prepared_statements', { DB_POOL_MIN: '2', DB_POOL_MAX: '2' });

/** The statements prepared on each of the server's two pooled connections (both held at once, so both are seen). */
async function prepared(): Promise<Array<{ name: string; statement: string }>> {
  const knex = server.app.orm()!.em.getConnection().getKnex();
  const client = knex.client as { acquireConnection(): Promise<PgClient>; releaseConnection(c: PgClient): Promise<unknown> };
  const connections = await Promise.all([client.acquireConnection(), client.acquireConnection()]);
  try {
    const lists = await Promise.all(connections.map((c) => c.query('select name, statement from pg_prepared_statements order by name')));
    return lists.flatMap((l) => l.rows);
  } finally {
    await Promise.all(connections.map((c) => client.releaseConnection(c)));
  }
}
interface PgClient {
  query(text: string): Promise<{ rows: Array<{ name: string; statement: string }> }>;
}

describe('prepared statements', () => {
  it('prepares each statement text once on a connection and runs it again by name', async () => {
    const created = await server.gql<{ createTask: { id: string } }>('mutation { createTask(input: { title: "prepared" }) { id } }');
    const id = created.body.data!.createTask.id;
    const read = async () => {
      const res = await server.gql<{ task: { title: string } }>('query($id: ID!) { task(id: $id) { title } }', { id });
      expect(res.body.data!.task.title).toBe('prepared');
    };
    const byId = async () => (await prepared()).filter((p) => p.name.startsWith('tt_') && p.statement.includes('from task t where t.id = any($1)'));
    await read();
    const first = await byId();
    expect(first.length).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 10; i++) await read();
    const later = await byId();
    // One name for the text, prepared at most once per connection.
    expect(new Set(later.map((p) => p.name)).size).toBe(1);
    expect(later.length).toBeLessThanOrEqual(2);
  });
});
