/**
 * No request path turns AsyncLocalStorage on. On Node 20 the first AsyncLocalStorage in use installs promise hooks
 * for the life of the process, and every promise of every later request pays for them (18-24% of a read's CPU in
 * the benchmark): MikroORM's em.transactional and flush use one, so the services must not (src/tasks/task.writes.ts).
 *
 * The check watches AsyncLocalStorage's internal `_enable` (Node 20's implementation) from before the server boots
 * (it migrates) through every kind of mutation and read. A Node without it (Node 24 builds AsyncLocalStorage on
 * AsyncContextFrame, which needs no promise hooks) cannot be checked this way: there the test skips, and in CI
 * (test/helpers/ci.ts) it fails, so CI's Node must be one with `_enable` (20 or 22).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';
import { skipWithout } from '../helpers/ci.js';

type Enable = (this: AsyncLocalStorage<unknown>) => void;
const proto = AsyncLocalStorage.prototype as unknown as { _enable?: Enable };
const original = proto._enable;
/** Stacks of the storages turned on by the server's code or its libraries while this file runs. */
const enabled: string[] = [];
if (original) {
  proto._enable = function (this: AsyncLocalStorage<unknown>) {
    const stack = new Error().stack ?? '';
    if (/\/src\/|@mikro-orm|knex|pg\//.test(stack)) enabled.push(stack);
    original.call(this);
  };
}

const { server } = useServer('async_hooks');

const TOUR = [
  'mutation($a: ID!, $b: ID!) { updateTask(id: $b, input: { title: "b2", parentId: $a }) { id } }',
  'mutation($a: ID!, $b: ID!) { updateTasks(ids: [$a, $b], input: { priority: HIGH }) { id } }',
  'mutation($a: ID!, $b: ID!) { addTaskDependency(taskId: $b, dependsOnId: $a) { id } }',
  'mutation($a: ID!, $b: ID!) { removeTaskDependency(taskId: $b, dependsOnId: $a) { id } }',
  'mutation($a: ID!) { startTask(id: $a) { id } }',
  'mutation($a: ID!) { reportProgress(id: $a, progress: 0.5, message: "half") { id } }',
  'mutation($a: ID!) { completeTask(id: $a, result: "ok") { id } }',
  'mutation($b: ID!) { archiveTask(id: $b) { id } }',
  'mutation($b: ID!) { unarchiveTask(id: $b) { id } }',
  'mutation($a: ID!) { createTasks(inputs: [{ title: "c", parentId: $a }, { title: "d" }]) { id } }',
  'query($b: ID!) { task(id: $b) { parent { id } dependencies { id } executions { nodes { id } } events { nodes { kind } } } }',
  '{ tasks(first: 5) { totalCount nodes { id parent { id } isBlocked subtasks { nodes { id } } } } taskStatistics { total } taskEvents(first: 5) { nodes { kind } } }',
  'mutation($a: ID!) { deleteTask(id: $a) }',
];

describe('async hooks', () => {
  const missing = original ? undefined : `Node ${process.version} has no AsyncLocalStorage.prototype._enable to watch`;
  it.skipIf(skipWithout(missing))(`boots and runs every kind of mutation and read without turning AsyncLocalStorage on${missing ? `: skipped, ${missing}` : ''}`, async () => {
    const create = async (title: string) =>
      (await server.gql<{ createTask: { id: string } }>('mutation($t: String!) { createTask(input: { title: $t }) { id } }', { t: title })).body.data!.createTask.id;
    const [a, b] = [await create('a'), await create('b')];
    for (const query of TOUR) {
      const res = await server.gql(query, { a, b });
      expect(res.body.errors, query).toBeUndefined();
    }
    expect(enabled, enabled.join('\n\n')).toEqual([]);
  });
});
