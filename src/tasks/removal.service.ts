/**
 * Archiving and deleting tasks. Archived tasks leave listings but keep everything; deleted tasks are gone, with
 * the contract's effects on edges, executions, subtasks and events.
 */
import type { TransactionRunner } from '../db/transaction.js';
import { query, sql, toSql, type OperationReader } from '../db/sql.js';
import type { TaskRecord } from './task.record.js';
import { changeTask, insertEvent, lockTask, lockTasksWhere } from './task.writes.js';
import { parseId } from './task.validation.js';

export class RemovalService {
  constructor(
    private readonly db: OperationReader,
    private readonly actor: string,
    private readonly transactions: TransactionRunner,
  ) {}

  /** Archives a task (ARCHIVED event); archiving an archived task changes nothing. */
  async archive(id: string): Promise<TaskRecord> {
    return this.setArchived(parseId(id), true);
  }

  /** Brings a task back (UNARCHIVED event); unarchiving a live task changes nothing. */
  async unarchive(id: string): Promise<TaskRecord> {
    return this.setArchived(parseId(id), false);
  }

  private async setArchived(taskId: string, archived: boolean): Promise<TaskRecord> {
    return this.transactions.run(this.db, async (tx) => {
      const task = await lockTask(tx, taskId);
      if ((task.archivedAt != null) === archived) return task;
      const kind = archived ? 'ARCHIVED' : 'UNARCHIVED';
      return (await changeTask(tx, task, kind, this.actor, (draft) => (draft.archivedAt = archived ? new Date() : null))).task;
    });
  }

  /**
   * Deletes a task for good. Its dependency edges go (each task that waited for it records DEPENDENCY_REMOVED),
   * its executions go (foreign key cascade), its subtasks become root tasks (each records UPDATED), and a DELETED
   * event is written; its earlier events stay with their `taskId`.
   */
  async delete(id: string): Promise<string> {
    const taskId = parseId(id);
    return this.transactions.run(this.db, async (tx) => {
      const task = await lockTask(tx, taskId);
      const dependents = await query<{ task_id: string }>(tx, toSql('select task_id from task_dependency where depends_on_id = ?', [taskId]));
      // Locked in id order, so concurrent deletes lock rows in the same order and cannot deadlock each other.
      const affected = await lockTasksWhere(tx, sql`t.id = any(${dependents.map((d) => d.task_id)}::uuid[]) or t.parent_id = ${taskId}::uuid`);
      const waiting = new Set(dependents.map((d) => d.task_id));
      for (const other of affected) {
        // One event per task (its version grows by one), even when it was both a subtask and a dependent.
        const detach = (draft: TaskRecord) => {
          if (draft.parent?.id === taskId) draft.parent = null;
        };
        if (waiting.has(other.id)) await changeTask(tx, other, 'DEPENDENCY_REMOVED', this.actor, detach, { dependsOnId: taskId, reason: 'deleted' });
        else await changeTask(tx, other, 'UPDATED', this.actor, detach);
      }
      await insertEvent(tx, taskId, 'DELETED', this.actor, { title: task.title, status: task.status, version: task.version });
      await query(tx, sql`delete from task where id = ${taskId}::uuid`);
      return taskId;
    });
  }
}
