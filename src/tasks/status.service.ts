/**
 * Status changes and progress: the status machine applied inside one transaction, with the executions it opens
 * and closes and the event it records.
 */
import { randomUUID } from 'node:crypto';
import { raw } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { TransactionRunner } from '../db/transaction.js';
import { AppError } from '../errors.js';
import type { LogLevel } from './execution.entity.js';
import { TaskExecution } from './execution.entity.js';
import { Task, type TaskStatus } from './task.entity.js';
import { recordChange } from './task.changes.js';
import { lockTask } from './task.service.js';
import { TaskRepository } from './task.repository.js';
import { applyTransition, assertTransition, TRANSITIONS, type TransitionDetails } from './transitions.js';
import { parseId, parseProgress } from './task.validation.js';

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
      assertTransition(from, to);
      if (to === 'IN_PROGRESS') {
        const blockers = await new TaskRepository(tx).blockers(taskId);
        if (blockers.length > 0) {
          throw new AppError('BLOCKED_BY_DEPENDENCY', `The task waits for ${blockers.length} task(s) that are not COMPLETED`, { blockers });
        }
      }
      const now = new Date();
      // The status always changes, so there is always an event, and updatedAt moves on (strictly increasing).
      recordChange(tx, task, 'STATUS_CHANGED', this.actor, (draft) => applyTransition(draft, to, now, details));
      if (to === 'IN_PROGRESS') {
        tx.create(TaskExecution, { id: randomUUID(), task, status: 'IN_PROGRESS', startedAt: now, progress: task.progress, context: task.context });
      } else if (from === 'IN_PROGRESS') {
        await tx.nativeUpdate(TaskExecution, { task: taskId, completedAt: null }, { status: task.status, completedAt: now, progress: task.progress });
      }
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
          allowed: [...TRANSITIONS[task.status as TaskStatus]],
        });
      }
      const now = new Date();
      const entry = message != null ? { at: now.toISOString(), level, message } : undefined;
      const changed = recordChange(tx, task, 'UPDATED', this.actor, (draft) => (draft.progress = value), entry ? { log: entry } : {});
      if (!changed) return task;
      // Appended in the database: the log is never read back into memory to add one line.
      await tx.nativeUpdate(
        TaskExecution,
        { task: taskId, completedAt: null },
        { progress: value, logs: raw('logs || ?::jsonb', [JSON.stringify(entry ? [entry] : [])]) },
      );
      return task;
    });
  }
}
