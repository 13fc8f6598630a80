/**
 * `task_execution`: one run of a task, opened when it enters IN_PROGRESS and closed when it leaves. A partial
 * unique index allows at most one open run per task.
 */
import { defineEntity, type Opt, type Ref } from '@mikro-orm/core';
import { Task, TASK_STATUSES, type JsonObject, type TaskStatus } from './task.entity.js';

export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** One line of an execution's log; `at` is an ISO string as stored in JSON. */
export interface LogEntry {
  at: string;
  level: LogLevel;
  message: string;
}

export class TaskExecution {
  id!: string;
  task!: Ref<Task>;
  status!: TaskStatus;
  startedAt!: Date;
  completedAt?: Date | null;
  progress: Opt<number> = 0;
  logs: Opt<LogEntry[]> = [];
  context: Opt<JsonObject> = {};
}

export const TaskExecutionSchema = defineEntity({
  class: TaskExecution,
  tableName: 'task_execution',
  checks: [{ name: 'task_execution_progress_check', expression: 'progress >= 0 and progress <= 1' }],
  indexes: [
    { name: 'task_execution_task_id_started_at_idx', properties: ['task', 'startedAt', 'id'] },
    {
      name: 'task_execution_one_open_idx',
      expression: 'create unique index "task_execution_one_open_idx" on "task_execution" ("task_id") where "completed_at" is null',
    },
  ],
  properties: (p) => ({
    id: p.uuid().primary(),
    // ON UPDATE CASCADE, as MikroORM 6 derived it (7 no longer does): the schema keeps it.
    task: () => p.manyToOne(Task).ref().deleteRule('cascade').updateRule('cascade').index(false),
    status: p.enum(TASK_STATUSES as unknown as string[]).nativeEnumName('task_status'),
    startedAt: p.datetime(3),
    completedAt: p.datetime(3).nullable(),
    progress: p.double().default(0),
    logs: p.json().defaultRaw(`'[]'`),
    context: p.json().defaultRaw(`'{}'`),
  }),
});
