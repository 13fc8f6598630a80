/**
 * `task_event`: the change feed. Every change to a task writes one row in the same transaction.
 *
 * `xid` is the writing transaction's id (`pg_current_xact_id()`). The feed orders by `(xid, id)` and returns only
 * rows whose transaction is older than every transaction still running, so a reader never moves its cursor past
 * an event that has yet to commit. `task_id` has no foreign key: events outlive their task.
 */
import { defineEntity, type Opt } from '@mikro-orm/core';
import type { JsonObject } from '../tasks/task.entity.js';

export const EVENT_KINDS = [
  'CREATED',
  'UPDATED',
  'STATUS_CHANGED',
  'DEPENDENCY_ADDED',
  'DEPENDENCY_REMOVED',
  'ARCHIVED',
  'UNARCHIVED',
  'DELETED',
] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

export class TaskEvent {
  /** A bigint, kept as a string. */
  id!: string;
  taskId!: string;
  kind!: EventKind;
  actor!: string;
  at!: Date;
  changes: Opt<JsonObject> = {};
  /** The writing transaction's xid8, as a string. */
  xid!: Opt<string>;
}

export const TaskEventSchema = defineEntity({
  class: TaskEvent,
  tableName: 'task_event',
  indexes: [
    { name: 'task_event_xid_id_idx', properties: ['xid', 'id'] },
    { name: 'task_event_task_id_id_idx', properties: ['taskId', 'id'] },
  ],
  properties: (p) => ({
    id: p.bigint('string').primary().autoincrement(),
    taskId: p.uuid(),
    kind: p.enum(EVENT_KINDS as unknown as string[]).nativeEnumName('task_event_kind'),
    actor: p.string().length(255),
    at: p.datetime(3),
    changes: p.json().defaultRaw(`'{}'`),
    xid: p.string().columnType('xid8').defaultRaw('pg_current_xact_id()'),
  }),
});
