import { describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';

/**
 * One request, several mutations: every mutation's result, and every nested field read after it, sees the writes of
 * the mutations before it. Reads are plain records cached per operation by DataLoaders (task.loaders.ts); the
 * caches are cleared after each mutation, so nothing a field read before a mutation is served after it.
 */
const { server } = useServer('freshness');

async function create(input: Record<string, unknown>): Promise<string> {
  const res = await server.gql<{ createTask: { id: string } }>(`mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }`, { input });
  expect(res.body.errors).toBeUndefined();
  return res.body.data!.createTask.id;
}

describe('reads after a mutation in the same request', () => {
  it('a nested parent read after an update of that parent shows the update', async () => {
    const parent = await create({ title: 'old title' });
    const child = await create({ title: 'child', parentId: parent });
    const res = await server.gql<Record<string, { parent?: { title: string; version: number }; title?: string }>>(
      `mutation($parent: ID!, $child: ID!) {
        before: updateTask(id: $child, input: { description: "one" }) { parent { title version } }
        rename: updateTask(id: $parent, input: { title: "new title" }) { title }
        after: updateTask(id: $child, input: { description: "two" }) { parent { title version } }
      }`,
      { parent, child },
    );
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.before!.parent).toEqual({ title: 'old title', version: 1 });
    expect(res.body.data!.rename!.title).toBe('new title');
    expect(res.body.data!.after!.parent).toEqual({ title: 'new title', version: 2 });
  });

  it("a parent's subtasks read after a createTask include the new task", async () => {
    const parent = await create({ title: 'parent' });
    const first = await create({ title: 'first', parentId: parent });
    const res = await server.gql<Record<string, { id: string; parent: { subtasks: { edges: Array<{ node: { id: string } }> } } }>>(
      `mutation($parent: ID!) {
        a: createTask(input: { title: "second", parentId: $parent }) { id parent { subtasks(first: 10) { edges { node { id } } } } }
        b: createTask(input: { title: "third", parentId: $parent }) { id parent { subtasks(first: 10) { edges { node { id } } } } }
      }`,
      { parent },
    );
    expect(res.body.errors).toBeUndefined();
    const { a, b } = res.body.data!;
    const ids = (r: typeof a) => r!.parent.subtasks.edges.map((e) => e.node.id).sort();
    expect(ids(a)).toEqual([first, a!.id].sort());
    expect(ids(b)).toEqual([first, a!.id, b!.id].sort());
  });

  it('dependencies read after a status change show the new status', async () => {
    const dep = await create({ title: 'dependency' });
    const task = await create({ title: 'waits' });
    const add = await server.gql(`mutation($t: ID!, $d: ID!) { addTaskDependency(taskId: $t, dependsOnId: $d) { id } }`, { t: task, d: dep });
    expect(add.body.errors).toBeUndefined();
    const res = await server.gql<Record<string, { isBlocked?: boolean; dependencies?: Array<{ status: string }>; status?: string }>>(
      `mutation($t: ID!, $d: ID!) {
        before: updateTask(id: $t, input: { description: "x" }) { isBlocked dependencies { status } }
        start: startTask(id: $d) { status }
        done: completeTask(id: $d) { status }
        after: updateTask(id: $t, input: { description: "y" }) { isBlocked dependencies { status } }
      }`,
      { t: task, d: dep },
    );
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.before).toEqual({ isBlocked: true, dependencies: [{ status: 'PENDING' }] });
    expect(res.body.data!.after).toEqual({ isBlocked: false, dependencies: [{ status: 'COMPLETED' }] });
  });
});
