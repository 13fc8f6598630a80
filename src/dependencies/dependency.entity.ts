/**
 * `task_dependency`: task `task_id` waits for task `depends_on_id`. The primary key makes each edge unique; the
 * check refuses a task waiting for itself; both ends cascade on delete.
 */
import { defineEntity, type Opt, type Ref } from '@mikro-orm/core';
import { Task } from '../tasks/task.entity.js';

export class TaskDependency {
  task!: Ref<Task>;
  dependsOn!: Ref<Task>;
  createdAt!: Opt<Date>;
}

export const TaskDependencySchema = defineEntity({
  class: TaskDependency,
  tableName: 'task_dependency',
  checks: [{ name: 'task_dependency_not_self_check', expression: 'task_id <> depends_on_id' }],
  indexes: [{ name: 'task_dependency_depends_on_id_idx', properties: ['dependsOn'] }],
  properties: (p) => ({
    task: () => p.manyToOne(Task).ref().primary().deleteRule('cascade'),
    dependsOn: () => p.manyToOne(Task).ref().primary().deleteRule('cascade'),
    createdAt: p.datetime(3),
  }),
});
