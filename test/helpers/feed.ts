/**
 * Waiting for the change feed. `taskEvents` shows an event once no transaction that started before it is still
 * running anywhere in the PostgreSQL cluster (transaction ids are cluster-wide), so while other test files hold
 * transactions open (fault tests, lock waits) an event committed a moment ago may not be in the feed yet. A test
 * that expects its own events waits here instead of reading the feed at once.
 */
import type { TestDatabase } from './database.js';
import { waitFor } from './server.js';

/**
 * Resolves once every transaction that committed before this call is below the feed's horizon: it takes a new
 * transaction id and waits until the oldest running transaction of the cluster is younger than it.
 */
export async function feedCaughtUp(db: Pick<TestDatabase, 'client'>, timeoutMs = 60_000): Promise<void> {
  const client = await db.client();
  try {
    const { rows } = await client.query<{ xid: string }>('select pg_current_xact_id()::text as xid');
    const xid = rows[0]!.xid;
    await waitFor(
      async () => {
        const res = await client.query<{ done: boolean }>('select pg_snapshot_xmin(pg_current_snapshot()) > $1::xid8 as done', [xid]);
        return res.rows[0]!.done || undefined;
      },
      'the change feed to reach the transactions committed so far',
      timeoutMs,
    );
  } finally {
    await client.end();
  }
}
