import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';

const { db, server } = useServer('deps', { DB_POOL_MAX: '12' });

interface TaskOut {
  id: string;
  version: number;
  isBlocked: boolean;
  availableTransitions: string[];
  dependencies: Array<{ id: string }>;
  dependents: Array<{ id: string }>;
}
const FIELDS = 'id version isBlocked availableTransitions dependencies { id } dependents { id }';

async function create(title = 'task'): Promise<TaskOut> {
  return (await server.gql<{ createTask: TaskOut }>(`mutation { createTask(input: { title: "${title}" }) { ${FIELDS} } }`)).body.data!.createTask;
}
const add = (taskId: string, dependsOnId: string) =>
  server.gql<{ addTaskDependency: TaskOut }>(`mutation { addTaskDependency(taskId: "${taskId}", dependsOnId: "${dependsOnId}") { ${FIELDS} } }`);
const remove = (taskId: string, dependsOnId: string) =>
  server.gql<{ removeTaskDependency: TaskOut }>(`mutation { removeTaskDependency(taskId: "${taskId}", dependsOnId: "${dependsOnId}") { ${FIELDS} } }`);
const read = async (id: string) => (await server.gql<{ task: TaskOut }>(`{ task(id: "${id}") { ${FIELDS} } }`)).body.data!.task;

describe('dependencies', () => {
  it('makes a task wait for another: returns the waiting task, lists both ends, blocks and versions only the waiting task', async () => {
    const a = await create('a');
    const b = await create('b');
    const res = await add(a.id, b.id);
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.addTaskDependency).toMatchObject({
      id: a.id,
      version: 2,
      isBlocked: true,
      dependencies: [{ id: b.id }],
      dependents: [],
      availableTransitions: ['BLOCKED', 'CANCELLED'],
    });
    expect(await read(b.id)).toMatchObject({ version: 1, isBlocked: false, dependents: [{ id: a.id }] });
    // Adding the same edge again changes nothing.
    expect((await add(a.id, b.id)).body.data!.addTaskDependency.version).toBe(2);
  });

  it('refuses to start a blocked task, naming the blockers, and lets it start once they are COMPLETED', async () => {
    const waiting = await create('waiting');
    const b1 = await create('b1');
    const b2 = await create('b2');
    await add(waiting.id, b1.id);
    await add(waiting.id, b2.id);
    const refused = await server.gql(`mutation { startTask(id: "${waiting.id}") { id } }`);
    expect(refused.body.errors?.[0]?.extensions?.code).toBe('BLOCKED_BY_DEPENDENCY');
    expect([...(refused.body.errors?.[0]?.extensions?.blockers as string[])].sort()).toEqual([b1.id, b2.id].sort());
    for (const b of [b1, b2]) {
      await server.gql(`mutation { startTask(id: "${b.id}") { id } }`);
      await server.gql(`mutation { completeTask(id: "${b.id}") { id } }`);
    }
    expect((await read(waiting.id)).isBlocked).toBe(false);
    const started = await server.gql<{ startTask: { status: string } }>(`mutation { startTask(id: "${waiting.id}") { status } }`);
    expect(started.body.data?.startTask.status).toBe('IN_PROGRESS');
  });

  it('removes a dependency, unblocking the task', async () => {
    const a = await create();
    const b = await create();
    await add(a.id, b.id);
    const res = await remove(a.id, b.id);
    expect(res.body.data!.removeTaskDependency).toMatchObject({ id: a.id, version: 3, isBlocked: false, dependencies: [] });
    // Removing an edge that is not there changes nothing.
    expect((await remove(a.id, b.id)).body.data!.removeTaskDependency.version).toBe(3);
  });

  it('refuses a dependency on itself and one that closes a cycle', async () => {
    const a = await create();
    const b = await create();
    const c = await create();
    expect((await add(a.id, a.id)).body.errors?.[0]?.extensions?.code).toBe('CYCLE_DETECTED');
    await add(a.id, b.id);
    await add(b.id, c.id);
    const cycle = await add(c.id, a.id);
    expect(cycle.body.errors?.[0]?.extensions?.code).toBe('CYCLE_DETECTED');
    expect((await read(c.id)).dependencies).toEqual([]);
    expect((await add(c.id, b.id)).body.errors?.[0]?.extensions?.code).toBe('CYCLE_DETECTED');
  });

  it('never lets two concurrent additions A->B and B->A both succeed', async () => {
    for (let round = 0; round < 8; round++) {
      const a = await create(`a${round}`);
      const b = await create(`b${round}`);
      const [r1, r2] = await Promise.all([add(a.id, b.id), add(b.id, a.id)]);
      const codes = [r1, r2].map((r) => r.body.errors?.[0]?.extensions?.code ?? 'OK').sort();
      expect(codes).toEqual(['CYCLE_DETECTED', 'OK']);
      const c = await db.client();
      const { rows } = await c.query<{ n: number }>('select count(*)::int as n from task_dependency where task_id = any($1)', [[a.id, b.id]]);
      await c.end();
      expect(rows[0]!.n).toBe(1);
    }
  });

  it('is NOT_FOUND for either end that does not exist, and BAD_USER_INPUT for a malformed id', async () => {
    const a = await create();
    expect((await add(a.id, randomUUID())).body.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND', field: 'dependsOnId' });
    expect((await add(randomUUID(), a.id)).body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await remove(a.id, randomUUID())).body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await add(a.id, 'nope')).body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'dependsOnId' });
  });
});
