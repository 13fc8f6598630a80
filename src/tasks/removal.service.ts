/**
 * Archiving and deleting tasks. Archived tasks leave listings but keep everything; deleted tasks are gone, with
 * the contract's effects on edges, executions, subtasks and events.
 */
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { TransactionRunner } from '../db/transaction.js';
import { TaskDependency } from '../dependencies/dependency.entity.js';
import { Task } from './task.entity.js';
import { recordChange, recordEvent } from './task.changes.js';
import { lockTask } from './task.service.js';
import { parseId } from './task.validation.js';

export class RemovalService {
  constructor(
    private readonly em: EntityManager,
    private readonly actor: string,
    private readonly transactions: TransactionRunner,
  ) {}

  /** Archives a task (ARCHIVED event); archiving an archived task changes nothing. */
  async archive(id: string): Promise<Task> {
    return this.setArchived(parseId(id), true);
  }

  /** Brings a task back (UNARCHIVED event); unarchiving a live task changes nothing. */
  async unarchive(id: string): Promise<Task> {
    return this.setArchived(parseId(id), false);
  }

  private async setArchived(taskId: string, archived: boolean): Promise<Task> {
    return this.transactions.run(this.em, async (tx) => {
      const task = await lockTask(tx, taskId);
      if ((task.archivedAt != null) === archived) return task;
      recordChange(tx, task, archived ? 'ARCHIVED' : 'UNARCHIVED', this.actor, (draft) => (draft.archivedAt = archived ? new Date() : null));
      return task;
    });
  }

  /**
   * Deletes a task for good. Its dependency edges go (each task that waited for it records DEPENDENCY_REMOVED),
   * its executions go (foreign key cascade), its subtasks become root tasks (each records UPDATED), and a DELETED
   * event is written; its earlier events stay with their `taskId`.
   */
  async delete(id: string): Promise<string> {
    const taskId = parseId(id);
    return this.transactions.run(this.em, async (tx) => {
      const task = await lockTask(tx, taskId);
      const waiting = new Set((await tx.find(TaskDependency, { dependsOn: taskId }, { fields: ['task'] })).map((d) => d.task.id));
      // Locked in id order, so concurrent deletes lock rows in the same order and cannot deadlock each other.
      const affected = await tx.find(
        Task,
        { $or: [{ id: { $in: [...waiting] } }, { parent: taskId }] },
        { lockMode: LockMode.PESSIMISTIC_WRITE, orderBy: { id: 'asc' } },
      );
      for (const other of affected) {
        // One event per task (its version grows by one), even when it was both a subtask and a dependent.
        const detach = (draft: Task) => {
          if (draft.parent?.id === taskId) draft.parent = null;
        };
        if (waiting.has(other.id)) recordChange(tx, other, 'DEPENDENCY_REMOVED', this.actor, detach, { dependsOnId: taskId, reason: 'deleted' });
        else recordChange(tx, other, 'UPDATED', this.actor, detach);
      }
      recordEvent(tx, taskId, 'DELETED', this.actor, { title: task.title, status: task.status, version: task.version });
      // The edges and executions go with the row (ON DELETE CASCADE); the ORM's copies of the edges are forgotten.
      tx.remove(task);
      return taskId;
    });
  }
}
