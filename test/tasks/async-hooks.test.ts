/**
 * No promise hooks. A process with async_hooks promise hooks installed pays for them on every promise of every
 * request (on Node 20, the first AsyncLocalStorage in use installed them for good: 18-24% of a read's CPU in the
 * benchmark). Node 24 builds AsyncLocalStorage on AsyncContextFrame, which needs no hooks, so MikroORM's
 * `em.transactional`, flush and RequestContext cost none; what could still install them is an async hook: any
 * `async_hooks.createHook(...).enable()` or `v8.promiseHooks` callback in the server or a library it loads.
 *
 * The check watches both from before the server boots (it migrates) through every kind of mutation and read and an
 * `em.transactional`, and proves it can see an enable by making one itself.
 */
import { AsyncLocalStorage, createHook } from 'node:async_hooks';
import { promiseHooks } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';

/** The function that called an async-hook API, from a stack taken in `record` (frames: Error, record, wrapper, caller). */
const callerOf = (stack: string): string => stack.split('\n')[3]?.trim() ?? '(unknown)';

/** The test runner's own hooks are not the server's. */
const RUNNER = /node_modules\/(vitest|@vitest|tinypool|why-is-node-running)\//;

/** Each async-hook API call in this process since this file loaded: who made it, and its stack. */
const installed: Array<{ api: string; caller: string; stack: string }> = [];
const record = (api: string) => {
  const stack = new Error().stack ?? '';
  installed.push({ api, caller: callerOf(stack), stack });
};

type AsyncHookProto = { enable: (this: unknown) => unknown };
const hookProto = Object.getPrototypeOf(createHook({})) as AsyncHookProto;
const { enable } = hookProto;
hookProto.enable = function (this: unknown) {
  record('AsyncHook.enable');
  return enable.call(this);
};
type PromiseHookApi = 'onInit' | 'onBefore' | 'onAfter' | 'onSettled' | 'createHook';
for (const api of ['onInit', 'onBefore', 'onAfter', 'onSettled', 'createHook'] as const satisfies readonly PromiseHookApi[]) {
  const original = promiseHooks[api] as (...args: unknown[]) => unknown;
  (promiseHooks as Record<PromiseHookApi, unknown>)[api] = function (...args: unknown[]) {
    record(`v8.promiseHooks.${api}`);
    return original.apply(promiseHooks, args);
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
  it('AsyncLocalStorage is AsyncContextFrame-based on this Node (no _enable that would install promise hooks)', () => {
    expect(Number.parseInt(process.versions.node, 10)).toBeGreaterThanOrEqual(24);
    expect((AsyncLocalStorage.prototype as unknown as { _enable?: unknown })._enable).toBeUndefined();
  });

  it('boots, runs every kind of mutation and read and an em.transactional, and installs no async hook', async () => {
    const create = async (title: string) =>
      (await server.gql<{ createTask: { id: string } }>('mutation($t: String!) { createTask(input: { title: $t }) { id } }', { t: title })).body.data!.createTask.id;
    const [a, b] = [await create('a'), await create('b')];
    for (const query of TOUR) {
      const res = await server.gql(query, { a, b });
      expect(res.body.errors, query).toBeUndefined();
    }
    // MikroORM's own transaction runs its callback in an AsyncLocalStorage: free on AsyncContextFrame.
    const count = await server.app.orm()!.em.fork().transactional(async (em) => em.getConnection().execute('select 1 as one'));
    expect(count).toEqual([{ one: 1 }]);

    const servers = installed.filter((i) => !RUNNER.test(i.caller));
    expect(servers, servers.map((i) => `${i.api} from ${i.caller}\n${i.stack}`).join('\n\n')).toEqual([]);

    // The watch sees an enable: this file's own is recorded, with this file as the caller.
    const before = installed.length;
    createHook({ init() {} }).enable().disable();
    const own = installed.slice(before).find((i) => i.api === 'AsyncHook.enable');
    expect(own?.caller).toMatch(/async-hooks\.test\.ts:\d+/);
  });
});
