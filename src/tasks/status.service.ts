/**
 * Status changes and progress: the status machine applied inside one transaction, with the executions it opens
 * and closes and the event it records.
 */
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { TransactionRunner } from '../db/transaction.js';
import { query, toSql } from '../db/sql.js';
import { AppError } from '../graphql/errors.js';
import { TaskExecution, type LogLevel } from './execution.entity.js';
import { changeTask, lockTask } from './events.js';
import type { Task, TaskStatus } from './task.entity.js';
import { applyTransition, assertTransition, type TransitionDetails } from './transitions.js';
import { parseId, parseProgress } from './task.validation.js';

/** Ids of the tasks `taskId` waits for that are not COMPLETED. */
export async function blockersOf(em: EntityManager, taskId: string): Promise<string[]> {
  const rows = await query<{ id: string }>(em, toSql(`select dep.id from task_dependency d join task dep on dep.id = d.depends_on_id
      where d.task_id = ? and dep.status <> 'COMPLETED' order by dep.id`,
    [taskId],
  ));
  return rows.map((r) => r.id);
}

export class StatusService {
  constructor(
    private readonly em: EntityManager,
    private readonly actor: string,
    private readonly transactions: TransactionRunner,
  ) {}

  /**
   * Moves a task to `to`. Entering IN_PROGRESS needs every dependency COMPLETED (else BLOCKED_BY_DEPENDENCY with the
   * blockers) and opens an execution; leaving IN_PROGRESS closes it with the new status.
   */
  async transition(id: string, to: TaskStatus, expectedVersion?: number | null, details: TransitionDetails = {}): Promise<Task> {
    const taskId = parseId(id);
    return this.transactions.run(this.em, async (tx) => {
      const task = await lockTask(tx, taskId, expectedVersion);
      const from = task.status;
      if (from === to) {
        throw new AppError('INVALID_TRANSITION', `The task is already ${to}`, { from, to, allowed: [] });
      }
      assertTransition(from, to);
      if (to === 'IN_PROGRESS') {
        const blockers = await blockersOf(tx, taskId);
        if (blockers.length > 0) {
          throw new AppError('BLOCKED_BY_DEPENDENCY', `The task waits for ${blockers.length} task(s) that are not COMPLETED`, { blockers });
        }
      }
      const now = new Date();
      changeTask(tx, task, 'STATUS_CHANGED', this.actor, () => applyTransition(task, to, now, details));
      if (from === 'IN_PROGRESS') await this.closeExecution(tx, task, to, now);
      if (to === 'IN_PROGRESS') {
        tx.create(TaskExecution, { id: randomUUID(), task, status: 'IN_PROGRESS', startedAt: now, progress: task.progress, context: task.context });
      }
      await tx.flush();
      return task;
    });
  }

  /**
   * Records progress of an IN_PROGRESS task and appends `{ at, level, message }` to its open execution's log when a
   * message is given. In any other status: INVALID_TRANSITION.
   */
  async reportProgress(id: string, progress: number, message: string | null | undefined, level: LogLevel): Promise<Task> {
    const taskId = parseId(id);
    const value = parseProgress(progress);
    return this.transactions.run(this.em, async (tx) => {
      const task = await lockTask(tx, taskId);
      if (task.status !== 'IN_PROGRESS') {
        throw new AppError('INVALID_TRANSITION', `Progress is reported only while IN_PROGRESS; the task is ${task.status}`, {
          from: task.status,
          to: task.status,
          allowed: [],
        });
      }
      const now = new Date();
      const entry = message != null ? { at: now.toISOString(), level, message } : undefined;
      const changed = changeTask(tx, task, 'UPDATED', this.actor, () => (task.progress = value), entry ? { log: entry } : {});
      if (!changed) return task;
      await tx.flush();
      // Appended in SQL: the log is never read back into memory to add one line.
      await query(tx, toSql(`update task_execution set progress = ?, logs = logs || ?::jsonb where task_id = ? and completed_at is null`, [
        value,
        JSON.stringify(entry ? [entry] : []),
        taskId,
      ]));
      return task;
    });
  }

  private async closeExecution(tx: EntityManager, task: Task, status: TaskStatus, now: Date): Promise<void> {
    const open = await tx.findOne(TaskExecution, { task: task.id, completedAt: null });
    if (!open) return;
    open.status = status;
    open.completedAt = now;
    open.progress = task.progress;
  }
}
