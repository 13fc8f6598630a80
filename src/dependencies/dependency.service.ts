/**
 * Dependencies between tasks: task `taskId` waits for `dependsOnId`. Additions are serialized by one advisory
 * lock, so the cycle check and the insert are atomic: two concurrent additions A->B and B->A cannot both pass.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { TransactionRunner } from '../db/transaction.js';
import { AppError } from '../errors.js';
import { Task } from '../tasks/task.entity.js';
import { recordChange } from '../tasks/task.changes.js';
import { TaskRepository } from '../tasks/task.repository.js';
import { lockTask } from '../tasks/task.service.js';
import { parseId } from '../tasks/task.validation.js';
import { TaskDependency } from './dependency.entity.js';

export class DependencyService {
  constructor(
    private readonly em: EntityManager,
    private readonly actor: string,
    private readonly transactions: TransactionRunner,
  ) {}

  /** Makes `taskId` wait for `dependsOnId`; returns the waiting task. Adding an existing edge changes nothing. */
  async add(taskIdInput: string, dependsOnIdInput: string): Promise<Task> {
    const taskId = parseId(taskIdInput, 'taskId');
    const dependsOnId = parseId(dependsOnIdInput, 'dependsOnId');
    if (taskId === dependsOnId) throw new AppError('CYCLE_DETECTED', 'A task cannot depend on itself', { taskId, dependsOnId });
    return this.transactions.run(this.em, async (tx) => {
      const repository = new TaskRepository(tx);
      await repository.lockDependencyGraph();
      const task = await lockTask(tx, taskId);
      if (!(await repository.lockKeyShare(dependsOnId))) {
        throw new AppError('NOT_FOUND', `Task ${dependsOnId} does not exist`, { id: dependsOnId, field: 'dependsOnId' });
      }
      if (await repository.reaches(dependsOnId, taskId)) {
        throw new AppError('CYCLE_DETECTED', `${dependsOnId} already waits (directly or not) for ${taskId}: this dependency would close a loop`, {
          taskId,
          dependsOnId,
        });
      }
      // Under the graph lock no other addition runs, so looking first cannot race another insert of this edge.
      if (await tx.findOne(TaskDependency, { task: taskId, dependsOn: dependsOnId })) return task;
      tx.create(TaskDependency, { task, dependsOn: tx.getReference(Task, dependsOnId), createdAt: new Date() });
      recordChange(tx, task, 'DEPENDENCY_ADDED', this.actor, undefined, { dependsOnId });
      return task;
    });
  }

  /** Stops `taskId` waiting for `dependsOnId`; returns the waiting task. Removing a missing edge changes nothing. */
  async remove(taskIdInput: string, dependsOnIdInput: string): Promise<Task> {
    const taskId = parseId(taskIdInput, 'taskId');
    const dependsOnId = parseId(dependsOnIdInput, 'dependsOnId');
    return this.transactions.run(this.em, async (tx) => {
      const task = await lockTask(tx, taskId);
      const deleted = await tx.nativeDelete(TaskDependency, { task: taskId, dependsOn: dependsOnId });
      if (deleted === 0) {
        if ((await tx.count(Task, { id: dependsOnId })) === 0) {
          throw new AppError('NOT_FOUND', `Task ${dependsOnId} does not exist`, { id: dependsOnId, field: 'dependsOnId' });
        }
        return task;
      }
      recordChange(tx, task, 'DEPENDENCY_REMOVED', this.actor, undefined, { dependsOnId });
      return task;
    });
  }
}
