import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TASK_FIELDS, useServer } from '../helpers/server.js';

const { db, server } = useServer('create');

const CREATE = `mutation Create($input: CreateTaskInput!) { createTask(input: $input) { ${TASK_FIELDS} parent { id } } }`;

interface TaskOut {
  id: string;
  title: string;
  tags: string[];
  version: number;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  [key: string]: unknown;
}

async function create(input: Record<string, unknown>) {
  return server.gql<{ createTask: TaskOut }>(CREATE, { input });
}

async function countRows(): Promise<number> {
  const c = await db.client();
  const { rows } = await c.query<{ n: string }>('select count(*) as n from task');
  await c.end();
  return Number(rows[0]?.n);
}

describe('createTask', () => {
  it('creates a task with the contract defaults and reads it back through a new operation', async () => {
    const res = await create({ title: '  Write the report  ' });
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    const t = res.body.data!.createTask;
    expect(t).toMatchObject({
      title: 'Write the report',
      description: null,
      type: 'FEATURE',
      priority: 'MEDIUM',
      status: 'PENDING',
      assignee: null,
      createdBy: 'anonymous',
      tags: [],
      metadata: {},
      context: {},
      progress: 0,
      retryCount: 0,
      version: 1,
      archivedAt: null,
      parent: null,
    });
    expect(t.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(t.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(t.updatedAt).toBe(t.createdAt);

    const read = await server.gql<{ task: TaskOut }>(`query($id: ID!) { task(id: $id) { ${TASK_FIELDS} } }`, { id: t.id });
    expect(read.body.data!.task).toEqual(Object.fromEntries(Object.entries(t).filter(([k]) => k !== 'parent')));
  });

  it('stores every field it is given', async () => {
    const parent = (await create({ title: 'parent' })).body.data!.createTask;
    const input = {
      title: 'All fields',
      description: 'd'.repeat(10_000),
      type: 'BUG_FIX',
      priority: 'CRITICAL',
      assignee: 'ada',
      createdBy: 'grace',
      tags: ['a', 'b', 'a'],
      metadata: { nested: { n: 1 }, list: [1, 2] },
      context: { env: 'prod' },
      estimatedMinutes: 0,
      dueAt: '2027-01-31T09:00:00.123+02:00',
      parentId: parent.id,
    };
    const res = await create(input);
    expect(res.body.errors).toBeUndefined();
    const { parentId: _p, ...stored } = input;
    expect(res.body.data!.createTask).toMatchObject({
      ...stored,
      tags: ['a', 'b'],
      dueAt: '2027-01-31T07:00:00.123Z',
      parent: { id: parent.id },
    });
  });

  it.each([
    ['title', { title: '   ' }],
    ['title', { title: 'x'.repeat(256) }],
    ['description', { title: 'ok', description: 'x'.repeat(10_001) }],
    ['tags', { title: 'ok', tags: Array.from({ length: 51 }, (_, i) => `t${i}`) }],
    ['tags', { title: 'ok', tags: [''] }],
    ['tags', { title: 'ok', tags: ['x'.repeat(65)] }],
    ['estimatedMinutes', { title: 'ok', estimatedMinutes: -1 }],
    ['metadata', { title: 'ok', metadata: { big: 'x'.repeat(64 * 1024) } }],
    ['context', { title: 'ok', context: { big: 'x'.repeat(64 * 1024) } }],
    ['id', { title: 'ok', id: 'not-a-uuid' }],
    ['parentId', { title: 'ok', parentId: 'nope' }],
  ])('refuses a bad %s with BAD_USER_INPUT and writes nothing', async (field, input) => {
    const before = await countRows();
    const res = await create(input);
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(res.body.data).toBeNull();
    expect(await countRows()).toBe(before);
  });

  it('accepts the limits exactly', async () => {
    const res = await create({
      title: 'x'.repeat(255),
      tags: Array.from({ length: 50 }, (_, i) => `${i}`.padEnd(64, 'x')),
      metadata: { big: 'x'.repeat(64 * 1024 - 12) },
    });
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.createTask.tags).toHaveLength(50);
  });

  it('refuses a JSON array as metadata (JSONObject) before running', async () => {
    const res = await create({ title: 'ok', metadata: [1, 2] });
    expect(res.status).toBe(400);
    expect(res.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('is NOT_FOUND when the parent does not exist', async () => {
    const before = await countRows();
    const res = await create({ title: 'orphan', parentId: randomUUID() });
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND', field: 'parentId' });
    expect(await countRows()).toBe(before);
  });

  it('returns the existing task unchanged when the client-supplied id exists (safe retry)', async () => {
    const id = randomUUID();
    const first = await create({ id, title: 'first', priority: 'LOW' });
    expect(first.body.data!.createTask).toMatchObject({ id, title: 'first', version: 1 });
    const retry = await create({ id, title: 'second', priority: 'HIGH' });
    expect(retry.body.errors).toBeUndefined();
    expect(retry.body.data!.createTask).toEqual(first.body.data!.createTask);
  });

  it('creates exactly one row when several calls with the same id race', async () => {
    const id = randomUUID();
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => create({ id, title: `racer ${i}` })));
    for (const r of results) expect(r.body.errors).toBeUndefined();
    const titles = new Set(results.map((r) => r.body.data!.createTask.title));
    expect(titles.size).toBe(1);
    const c = await db.client();
    const { rows } = await c.query('select title from task where id = $1', [id]);
    await c.end();
    expect(rows).toEqual([{ title: [...titles][0] }]);
  });

  it('treats an id with upper-case hex as the same task', async () => {
    const id = randomUUID();
    await create({ id, title: 'case' });
    const again = await create({ id: id.toUpperCase(), title: 'other' });
    expect(again.body.data!.createTask).toMatchObject({ id, title: 'case' });
  });

  it('writes the task and its CREATED event in one statement, which commits both or neither', async () => {
    const res = await create({ title: 'lone statement' });
    expect(res.body.errors).toBeUndefined();
    const id = res.body.data!.createTask.id;
    const c = await db.client();
    const { rows } = await c.query<{ task_tx: string; event_tx: string; kind: string }>(
      `select t.xmin::text as task_tx, e.xmin::text as event_tx, e.kind from task t join task_event e on e.task_id = t.id where t.id = $1`,
      [id],
    );
    await c.end();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ kind: 'CREATED' });
    expect(rows[0]!.event_tx).toBe(rows[0]!.task_tx);
    const requestId = `create-one-statement-${id}`;
    const again = await server.gql<{ createTask: TaskOut }>(CREATE, { input: { title: 'counted' } }, { 'x-request-id': requestId });
    expect(again.body.errors).toBeUndefined();
    expect((await server.report(requestId)).sqlStatements).toBe(1);
  });

  it('returns the existing task for its client id before looking at the parent', async () => {
    const id = randomUUID();
    await create({ id, title: 'kept' });
    const retry = await create({ id, title: 'other', parentId: randomUUID() });
    expect(retry.body.errors).toBeUndefined();
    expect(retry.body.data!.createTask).toMatchObject({ id, title: 'kept' });
  });
});
