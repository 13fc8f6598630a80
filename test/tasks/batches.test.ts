import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';

const { db, server } = useServer('batches');

async function count(): Promise<number> {
  const c = await db.client();
  const { rows } = await c.query<{ n: number }>('select (select count(*) from task)::int + (select count(*) from task_event)::int as n');
  await c.end();
  return rows[0]!.n;
}

const CREATE_MANY = 'mutation($inputs: [CreateTaskInput!]!) { createTasks(inputs: $inputs) { id title version parent { id } } }';
const UPDATE_MANY = 'mutation($ids: [ID!]!, $input: UpdateTaskInput!) { updateTasks(ids: $ids, input: $input) { id title priority version } }';

describe('createTasks', () => {
  it('creates every task in one transaction, in input order, a parent possibly from the same batch', async () => {
    const parentId = randomUUID();
    const res = await server.gql<{ createTasks: Array<{ id: string; title: string; version: number; parent: { id: string } | null }> }>(CREATE_MANY, {
      inputs: [{ title: 'child', parentId }, { id: parentId, title: 'parent' }, { title: 'third' }],
    });
    expect(res.body.errors).toBeUndefined();
    const [child, parent, third] = res.body.data!.createTasks;
    expect(child).toMatchObject({ title: 'child', parent: { id: parentId }, version: 1 });
    expect(parent).toMatchObject({ id: parentId, title: 'parent', parent: null });
    expect(third).toMatchObject({ title: 'third' });
  });

  it('creates nothing when one input is invalid, naming its index and field', async () => {
    const before = await count();
    const res = await server.gql(CREATE_MANY, { inputs: [{ title: 'fine' }, { title: 'fine too' }, { title: '   ' }] });
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'title', index: 2 });
    expect(await count()).toBe(before);
    const orphan = await server.gql(CREATE_MANY, { inputs: [{ title: 'fine' }, { title: 'orphan', parentId: randomUUID() }] });
    expect(orphan.body.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND', field: 'parentId', index: 1 });
    expect(await count()).toBe(before);
  });

  it('refuses parents that loop within the batch', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const before = await count();
    const res = await server.gql(CREATE_MANY, { inputs: [{ id: a, title: 'a', parentId: b }, { id: b, title: 'b', parentId: a }] });
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'CYCLE_DETECTED', field: 'parentId' });
    expect(await count()).toBe(before);
  });

  it('takes at most 100 inputs', async () => {
    const ok = await server.gql<{ createTasks: unknown[] }>(CREATE_MANY, { inputs: Array.from({ length: 100 }, (_, i) => ({ title: `n${i}` })) });
    expect(ok.body.data!.createTasks).toHaveLength(100);
    const before = await count();
    const tooMany = await server.gql(CREATE_MANY, { inputs: Array.from({ length: 101 }, (_, i) => ({ title: `n${i}` })) });
    expect(tooMany.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'inputs' });
    expect(await count()).toBe(before);
  });

  it('returns existing tasks for client ids that exist, creating the rest', async () => {
    const id = randomUUID();
    await server.gql(CREATE_MANY, { inputs: [{ id, title: 'original' }] });
    const res = await server.gql<{ createTasks: Array<{ id: string; title: string }> }>(CREATE_MANY, {
      inputs: [{ id, title: 'retry' }, { title: 'new' }],
    });
    expect(res.body.data!.createTasks.map((t) => t.title)).toEqual(['original', 'new']);
  });
});

describe('updateTasks', () => {
  it('applies one change to every task, in the order of ids, versioning each once', async () => {
    const made = await server.gql<{ createTasks: Array<{ id: string }> }>(CREATE_MANY, { inputs: [{ title: 'a' }, { title: 'b' }, { title: 'c' }] });
    const ids = made.body.data!.createTasks.map((t) => t.id).reverse();
    const res = await server.gql<{ updateTasks: Array<{ id: string; priority: string; version: number }> }>(UPDATE_MANY, { ids, input: { priority: 'HIGH' } });
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.updateTasks.map((t) => t.id)).toEqual(ids);
    for (const t of res.body.data!.updateTasks) expect(t).toMatchObject({ priority: 'HIGH', version: 2 });
  });

  it('changes nothing when one id does not exist or the input is invalid', async () => {
    const made = await server.gql<{ createTasks: Array<{ id: string }> }>(CREATE_MANY, { inputs: [{ title: 'x' }, { title: 'y' }] });
    const ids = made.body.data!.createTasks.map((t) => t.id);
    const before = await count();
    const missing = await server.gql(UPDATE_MANY, { ids: [...ids, randomUUID()], input: { title: 'changed' } });
    expect(missing.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const invalid = await server.gql(UPDATE_MANY, { ids, input: { title: null } });
    expect(invalid.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'title' });
    const tooMany = await server.gql(UPDATE_MANY, { ids: Array.from({ length: 101 }, () => randomUUID()), input: { title: 'z' } });
    expect(tooMany.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'ids' });
    expect(await count()).toBe(before);
    const after = await server.gql<{ task: { title: string; version: number } }>(`{ task(id: "${ids[0]}") { title version } }`);
    expect(after.body.data!.task).toEqual({ title: 'x', version: 1 });
  });
});
