/**
 * Dependencies between tasks: task `taskId` waits for `dependsOnId`. Additions are serialized by one advisory
 * lock, so the cycle check and the insert are atomic: two concurrent additions A->B and B->A cannot both pass.
 */
import type { TransactionRunner } from '../db/transaction.js';
import { query, toSql, type OperationReader } from '../db/sql.js';
import { AppError } from '../errors.js';
import type { TaskRecord } from './task.record.js';
import { changeTask, lockTask } from './task.writes.js';
import { parseId } from './task.validation.js';

/** Transaction-level advisory lock key that serializes changes to the dependency graph's shape. */
const DEPENDENCY_GRAPH_LOCK_KEY = 7_264_911_003;

export class DependencyService {
  constructor(
    private readonly db: OperationReader,
    private readonly actor: string,
    private readonly transactions: TransactionRunner,
  ) {}

  /** Makes `taskId` wait for `dependsOnId`; returns the waiting task. Adding an existing edge changes nothing. */
  async add(taskIdInput: string, dependsOnIdInput: string): Promise<TaskRecord> {
    const taskId = parseId(taskIdInput, 'taskId');
    const dependsOnId = parseId(dependsOnIdInput, 'dependsOnId');
    if (taskId === dependsOnId) throw new AppError('CYCLE_DETECTED', 'A task cannot depend on itself', { taskId, dependsOnId });
    return this.transactions.run(this.db, async (tx) => {
      await query(tx, toSql('select pg_advisory_xact_lock(?)', [DEPENDENCY_GRAPH_LOCK_KEY]));
      const task = await lockTask(tx, taskId);
      // KEY SHARE: the other task cannot be deleted under us, and its own updates are not held up.
      const other = await query<{ id: string }>(tx, toSql('select id from task where id = ? for key share', [dependsOnId]));
      if (other.length === 0) throw new AppError('NOT_FOUND', `Task ${dependsOnId} does not exist`, { id: dependsOnId, field: 'dependsOnId' });
      const cycle = await query<{ found: number }>(tx, toSql(`with recursive reach(id) as (
           select depends_on_id from task_dependency where task_id = ?
           union
           select d.depends_on_id from task_dependency d join reach r on d.task_id = r.id
         )
         select 1 as found from reach where id = ? limit 1`,
        [dependsOnId, taskId],
      ));
      if (cycle.length > 0) {
        throw new AppError('CYCLE_DETECTED', `${dependsOnId} already waits (directly or not) for ${taskId}: this dependency would close a loop`, {
          taskId,
          dependsOnId,
        });
      }
      const inserted = await query<{ task_id: string }>(tx, toSql(`insert into task_dependency (task_id, depends_on_id, created_at) values (?, ?, now())
         on conflict do nothing returning task_id`,
        [taskId, dependsOnId],
      ));
      if (inserted.length === 0) return task;
      return (await changeTask(tx, task, 'DEPENDENCY_ADDED', this.actor, () => undefined, { dependsOnId })).task;
    });
  }

  /** Stops `taskId` waiting for `dependsOnId`; returns the waiting task. Removing a missing edge changes nothing. */
  async remove(taskIdInput: string, dependsOnIdInput: string): Promise<TaskRecord> {
    const taskId = parseId(taskIdInput, 'taskId');
    const dependsOnId = parseId(dependsOnIdInput, 'dependsOnId');
    return this.transactions.run(this.db, async (tx) => {
      const task = await lockTask(tx, taskId);
      const deleted = await query<{ task_id: string }>(tx, toSql('delete from task_dependency where task_id = ? and depends_on_id = ? returning task_id',
        [taskId, dependsOnId],
      ));
      if (deleted.length === 0) {
        const other = await query<{ id: string }>(tx, toSql('select id from task where id = ?', [dependsOnId]));
        if (other.length === 0) throw new AppError('NOT_FOUND', `Task ${dependsOnId} does not exist`, { id: dependsOnId, field: 'dependsOnId' });
        return task;
      }
      return (await changeTask(tx, task, 'DEPENDENCY_REMOVED', this.actor, () => undefined, { dependsOnId })).task;
    });
  }
}
