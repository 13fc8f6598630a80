/**
 * Status changes and progress: the status machine applied inside one transaction, with the executions it opens
 * and closes and the event it records.
 */
import { randomUUID } from 'node:crypto';
import type { TransactionRunner } from '../db/transaction.js';
import { query, toSql, type OperationReader } from '../db/sql.js';
import { AppError } from '../errors.js';
import type { LogLevel } from './execution.entity.js';
import { diff, nextUpdatedAt, snapshot } from './events.js';
import type { TaskStatus } from './task.entity.js';
import { changeTask, lockTask } from './task.writes.js';
import { taskRecordMapper, type TaskRecord } from './task.record.js';
import { lockForTransition, writeTransition } from './transition.statements.js';
import { applyTransition, assertTransition, TRANSITIONS, type TransitionDetails } from './transitions.js';
import { parseId, parseProgress } from './task.validation.js';

export class StatusService {
  constructor(
    private readonly db: OperationReader,
    private readonly actor: string,
    private readonly transactions: TransactionRunner,
  ) {}

  /**
   * Moves a task to `to`. Entering IN_PROGRESS needs every dependency COMPLETED (else BLOCKED_BY_DEPENDENCY with the
   * blockers) and opens an execution; leaving IN_PROGRESS closes it with the new status. Two statements in the
   * transaction (transition.statements.ts): lock and read, then write.
   */
  async transition(id: string, to: TaskStatus, expectedVersion?: number | null, details: TransitionDetails = {}): Promise<TaskRecord> {
    const taskId = parseId(id);
    const toRecord = taskRecordMapper(this.db.getPlatform());
    return this.transactions.run(this.db, async (tx) => {
      const locked = await lockForTransition(tx, taskId, to === 'IN_PROGRESS');
      if (!locked) throw AppError.notFound('Task', taskId);
      const task = toRecord(locked.row);
      if (expectedVersion != null && task.version !== expectedVersion) throw AppError.versionConflict(taskId, expectedVersion, task.version);
      const from = task.status;
      assertTransition(from, to);
      const { blockers } = locked;
      if (blockers.length > 0) {
        throw new AppError('BLOCKED_BY_DEPENDENCY', `The task waits for ${blockers.length} task(s) that are not COMPLETED`, { blockers });
      }
      const now = new Date();
      const before = snapshot(task);
      applyTransition(task, to, now, details);
      // The status always changes, so there is always an event, and updatedAt moves on (strictly increasing).
      const changes = diff(before, snapshot(task));
      task.updatedAt = nextUpdatedAt(task.updatedAt, now.getTime());
      const openExecutionId = to === 'IN_PROGRESS' ? randomUUID() : undefined;
      return toRecord(await writeTransition(tx, { task, from, actor: this.actor, changes, now, openExecutionId }));
    });
  }

  /**
   * Records progress of an IN_PROGRESS task and appends `{ at, level, message }` to its open execution's log when a
   * message is given. In any other status: INVALID_TRANSITION.
   */
  async reportProgress(id: string, progress: number, message: string | null | undefined, level: LogLevel): Promise<TaskRecord> {
    const taskId = parseId(id);
    const value = parseProgress(progress);
    return this.transactions.run(this.db, async (tx) => {
      const task = await lockTask(tx, taskId);
      if (task.status !== 'IN_PROGRESS') {
        throw new AppError('INVALID_TRANSITION', `Progress is reported only while IN_PROGRESS; the task is ${task.status}`, {
          from: task.status,
          to: task.status,
          allowed: [...TRANSITIONS[task.status]],
        });
      }
      const now = new Date();
      const entry = message != null ? { at: now.toISOString(), level, message } : undefined;
      const { task: updated, changed } = await changeTask(tx, task, 'UPDATED', this.actor, (draft) => (draft.progress = value), entry ? { log: entry } : {});
      if (!changed) return task;
      // Appended in SQL: the log is never read back into memory to add one line.
      await query(tx, toSql(`update task_execution set progress = ?, logs = logs || ?::jsonb where task_id = ? and completed_at is null`, [
        value,
        JSON.stringify(entry ? [entry] : []),
        taskId,
      ]));
      return updated;
    });
  }
}
