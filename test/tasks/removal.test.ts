import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';
import { feedCaughtUp } from '../helpers/feed.js';

const { db, server } = useServer('removal');

async function ok<T>(query: string): Promise<T> {
  const res = await server.gql<T>(query);
  expect(res.body.errors).toBeUndefined();
  return res.body.data!;
}
const create = async (title: string, extra = '') =>
  (await ok<{ createTask: { id: string } }>(`mutation { createTask(input: { title: "${title}" ${extra} }) { id } }`)).createTask.id;

async function rows(sql: string, params: unknown[]): Promise<Array<Record<string, unknown>>> {
  const c = await db.client();
  const r = await c.query(sql, params);
  await c.end();
  return r.rows as Array<Record<string, unknown>>;
}

describe('archive', () => {
  it('hides an archived task from listings but not from task(id), and brings it back', async () => {
    const id = await create('to archive');
    const archived = await ok<{ archiveTask: { archivedAt: string | null; version: number } }>(`mutation { archiveTask(id: "${id}") { archivedAt version } }`);
    expect(archived.archiveTask.archivedAt).not.toBeNull();
    expect(archived.archiveTask.version).toBe(2);
    const listed = await ok<{ tasks: { nodes: Array<{ id: string }> } }>('{ tasks(first: 100) { nodes { id } } }');
    expect(listed.tasks.nodes.map((n) => n.id)).not.toContain(id);
    const only = await ok<{ tasks: { nodes: Array<{ id: string }> } }>('{ tasks(first: 100, filter: { archived: ONLY }) { nodes { id } } }');
    expect(only.tasks.nodes.map((n) => n.id)).toContain(id);
    expect((await ok<{ task: { id: string } }>(`{ task(id: "${id}") { id } }`)).task.id).toBe(id);
    const back = await ok<{ unarchiveTask: { archivedAt: string | null; version: number } }>(`mutation { unarchiveTask(id: "${id}") { archivedAt version } }`);
    expect(back.unarchiveTask).toEqual({ archivedAt: null, version: 3 });
  });

  it('is NOT_FOUND for a task that does not exist', async () => {
    const res = await server.gql(`mutation { archiveTask(id: "${randomUUID()}") { id } }`);
    expect(res.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});

describe('deleteTask', () => {
  it('removes the task, its edges and executions, frees its subtasks and keeps its events', async () => {
    const doomed = await create('doomed');
    const child = await create('child', `, parentId: "${doomed}"`);
    const waiter = await create('waiter');
    const upstream = await create('upstream');
    await ok(`mutation { addTaskDependency(taskId: "${waiter}", dependsOnId: "${doomed}") { id } }`);
    await ok(`mutation { addTaskDependency(taskId: "${doomed}", dependsOnId: "${upstream}") { id } }`);
    await ok(`mutation { removeTaskDependency(taskId: "${doomed}", dependsOnId: "${upstream}") { id } }`);
    await ok(`mutation { startTask(id: "${doomed}") { id } }`);

    const res = await ok<{ deleteTask: string }>(`mutation { deleteTask(id: "${doomed}") }`);
    expect(res.deleteTask).toBe(doomed);

    expect((await ok<{ task: unknown }>(`{ task(id: "${doomed}") { id } }`)).task).toBeNull();
    expect(await rows('select * from task_dependency where task_id = $1 or depends_on_id = $1', [doomed])).toEqual([]);
    expect(await rows('select * from task_execution where task_id = $1', [doomed])).toEqual([]);
    const freed = await ok<{ task: { parent: unknown; version: number } }>(`{ task(id: "${child}") { parent { id } version } }`);
    expect(freed.task).toEqual({ parent: null, version: 2 });
    const w = await ok<{ task: { dependencies: unknown[]; isBlocked: boolean; version: number } }>(
      `{ task(id: "${waiter}") { dependencies { id } isBlocked version } }`,
    );
    expect(w.task).toEqual({ dependencies: [], isBlocked: false, version: 3 });

    const events = await rows('select kind, task_id from task_event where task_id = $1 order by id', [doomed]);
    expect(events.map((e) => e.kind)).toEqual(['CREATED', 'DEPENDENCY_ADDED', 'DEPENDENCY_REMOVED', 'STATUS_CHANGED', 'DELETED']);
    await feedCaughtUp(db);
    const feed = await ok<{ taskEvents: { nodes: Array<{ kind: string; taskId: string; task: unknown }> } }>(
      '{ taskEvents(last: 100) { nodes { kind taskId task { id } } } }',
    );
    const mine = feed.taskEvents.nodes.filter((e) => e.taskId === doomed);
    expect(mine.at(-1)).toEqual({ kind: 'DELETED', taskId: doomed, task: null });
    expect(mine.every((e) => e.task === null)).toBe(true);
    const childEvents = feed.taskEvents.nodes.filter((e) => e.taskId === child).map((e) => e.kind);
    expect(childEvents).toEqual(['CREATED', 'UPDATED']);
  });

  it('is NOT_FOUND for a task that does not exist (or no longer does)', async () => {
    const id = await create('twice');
    await ok(`mutation { deleteTask(id: "${id}") }`);
    const res = await server.gql(`mutation { deleteTask(id: "${id}") }`);
    expect(res.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});

describe('node', () => {
  it('finds tasks, executions and events by id, and null for unknown ids', async () => {
    const id = await create('noded');
    await ok(`mutation { startTask(id: "${id}") { id } }`);
    const t = await ok<{ task: { executions: { nodes: Array<{ id: string }> }; events: { nodes: Array<{ id: string }> } } }>(
      `{ task(id: "${id}") { executions { nodes { id } } events { nodes { id } } } }`,
    );
    const executionId = t.task.executions.nodes[0]!.id;
    const eventId = t.task.events.nodes[0]!.id;
    const q = (nodeId: string) =>
      ok<{ node: Record<string, unknown> | null }>(
        `{ node(id: "${nodeId}") { __typename id ... on Task { title } ... on TaskExecution { status task { id } } ... on TaskEvent { kind taskId } } }`,
      );
    expect((await q(id)).node).toEqual({ __typename: 'Task', id, title: 'noded' });
    expect((await q(executionId)).node).toEqual({ __typename: 'TaskExecution', id: executionId, status: 'IN_PROGRESS', task: { id } });
    expect((await q(eventId)).node).toEqual({ __typename: 'TaskEvent', id: eventId, kind: 'CREATED', taskId: id });
    expect((await q(randomUUID())).node).toBeNull();
    expect((await q('999999999')).node).toBeNull();
  });
});
