/**
 * Transactions under contention and held too long: a deadlock PostgreSQL breaks is run again (once, without
 * applying anything twice), and a connection or transaction held past DB_LEAK_WARNING_MS is reported with its
 * operation and request id.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { TransactionRunner } from '../../src/db/transaction.js';
import { OperationRegistry } from '../../src/lifecycle/operations.js';
import { Task } from '../../src/tasks/task.entity.js';
import { LockMode, raw } from '@mikro-orm/core';
import { useServer, waitFor } from '../helpers/server.js';

const { db, server } = useServer('transactions', { DB_LEAK_WARNING_MS: '300' });

async function createTask(title: string): Promise<string> {
  const res = await server.gql<{ createTask: { id: string } }>(`mutation { createTask(input: { title: "${title}" }) { id } }`);
  return res.body.data!.createTask.id;
}

describe('transactions', () => {
  it('runs a transaction again when PostgreSQL breaks a deadlock, applying each change once', async () => {
    const [a, b] = [await createTask('a'), await createTask('b')];
    const orm = server.app.orm()!;
    const runner = new TransactionRunner({ log: server.app.log, operations: new OperationRegistry(), leakWarningMs: 60_000 });
    const attempts = { first: 0, second: 0 };
    let bothHoldOne: () => void = () => undefined;
    let holding = 0;
    const barrier = new Promise<void>((resolve) => (bothHoldOne = resolve));
    // Each locks one row, waits until the other holds its row, then asks for the other's: a deadlock.
    const crossed = (first: string, second: string, key: 'first' | 'second') =>
      runner.run(orm.em.fork(), async (tx) => {
        attempts[key]++;
        await tx.findOneOrFail(Task, first, { lockMode: LockMode.PESSIMISTIC_WRITE });
        if (attempts[key] === 1) {
          if (++holding === 2) bothHoldOne();
          await barrier;
        }
        await tx.findOneOrFail(Task, second, { lockMode: LockMode.PESSIMISTIC_WRITE });
        await tx.nativeUpdate(Task, { id: first }, { retryCount: raw('retry_count + 1') });
      });
    await Promise.all([crossed(a, b, 'first'), crossed(b, a, 'second')]);
    expect(attempts.first + attempts.second).toBe(3);
    const rows = await orm.em.fork().find(Task, { id: { $in: [a, b] } });
    expect(rows.map((t) => t.retryCount).sort()).toEqual([1, 1]);
    expect(server.logs.some((l) => String(l.msg).startsWith('transaction aborted by PostgreSQL') && l.sqlState === '40P01')).toBe(true);
  });

  it('warns about a transaction and a connection held longer than DB_LEAK_WARNING_MS, naming the operation', async () => {
    const id = await createTask('held');
    const mark = server.logs.length;
    const since = () => server.logs.slice(mark);
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    await locker.query('begin');
    await locker.query('select 1 from task where id = $1 for update', [id]);
    const pending = server.gql(`mutation HeldUpdate { updateTask(id: "${id}", input: { title: "late" }) { title } }`, {}, { 'x-request-id': 'held-1' });
    const tx = await waitFor(() => since().find((l) => String(l.msg).startsWith('transaction held longer than DB_LEAK_WARNING_MS')), 'the transaction warning');
    expect(tx).toMatchObject({ level: 'warn', requestId: 'held-1', operation: 'HeldUpdate' });
    const conn = await waitFor(() => since().find((l) => String(l.msg).startsWith('connection held longer than DB_LEAK_WARNING_MS')), 'the connection warning');
    expect(conn).toMatchObject({ level: 'warn' });
    expect(conn.suspects).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'HeldUpdate', requestId: 'held-1' })]));
    await locker.query('commit');
    await locker.end();
    expect((await pending).body.errors).toBeUndefined();
  });
});
