import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TASK_FIELDS, useServer } from '../helpers/server.js';

const { db, server } = useServer('update', { DB_POOL_MAX: '12' });

interface TaskOut {
  id: string;
  title: string;
  version: number;
  updatedAt: string;
  parent: { id: string } | null;
  [key: string]: unknown;
}

const UPDATE = `mutation Update($id: ID!, $input: UpdateTaskInput!, $v: Int) {
  updateTask(id: $id, input: $input, expectedVersion: $v) { ${TASK_FIELDS} parent { id } }
}`;

async function create(input: Record<string, unknown> = {}): Promise<TaskOut> {
  const res = await server.gql<{ createTask: TaskOut }>(
    `mutation($input: CreateTaskInput!) { createTask(input: $input) { ${TASK_FIELDS} parent { id } } }`,
    { input: { title: 'task', ...input } },
  );
  expect(res.body.errors).toBeUndefined();
  return res.body.data!.createTask;
}

async function update(id: string, input: Record<string, unknown>, v?: number) {
  return server.gql<{ updateTask: TaskOut }>(UPDATE, { id, input, v });
}

async function stored(id: string): Promise<Record<string, unknown>> {
  const c = await db.client();
  const { rows } = await c.query('select title, version, description, assignee, tags, parent_id, updated_at from task where id = $1', [id]);
  await c.end();
  return rows[0] as Record<string, unknown>;
}

describe('updateTask', () => {
  it('changes only the fields given, bumps the version by one and moves updatedAt forward', async () => {
    const t = await create({ description: 'keep me', assignee: 'ada', tags: ['x'] });
    const res = await update(t.id, { title: ' New title ', priority: 'HIGH' });
    expect(res.body.errors).toBeUndefined();
    const u = res.body.data!.updateTask;
    expect(u).toMatchObject({ title: 'New title', priority: 'HIGH', description: 'keep me', assignee: 'ada', tags: ['x'], version: 2 });
    expect(Date.parse(u.updatedAt)).toBeGreaterThan(Date.parse(t.updatedAt));
    expect(u.createdAt).toBe(t.createdAt);
    expect(await stored(t.id)).toMatchObject({ title: 'New title', version: 2 });
  });

  it('clears nullable fields on explicit null', async () => {
    const t = await create({ description: 'd', assignee: 'ada', estimatedMinutes: 5, dueAt: '2030-01-01T00:00:00.000Z' });
    const res = await update(t.id, { description: null, assignee: null, estimatedMinutes: null, dueAt: null });
    expect(res.body.data!.updateTask).toMatchObject({ description: null, assignee: null, estimatedMinutes: null, dueAt: null, version: 2 });
  });

  it.each(['title', 'type', 'priority', 'tags', 'metadata', 'context', 'progress'])(
    'refuses an explicit null for the non-nullable %s and changes nothing',
    async (field) => {
      const t = await create();
      const res = await update(t.id, { [field]: null, description: 'would change' });
      expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
      expect(await stored(t.id)).toMatchObject({ version: 1, description: null });
    },
  );

  it.each([
    ['title', { title: '' }],
    ['progress', { progress: 1.5 }],
    ['progress', { progress: -0.1 }],
    ['tags', { tags: ['ok', ''] }],
    ['estimatedMinutes', { estimatedMinutes: -5 }],
  ])('refuses an invalid %s', async (field, input) => {
    const t = await create();
    const res = await update(t.id, input);
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect((await stored(t.id)).version).toBe(1);
  });

  it('keeps the version and writes nothing when nothing changes', async () => {
    const t = await create({ title: 'same', tags: ['a'] });
    const res = await update(t.id, { title: 'same', tags: ['a'] }, 1);
    expect(res.body.data!.updateTask).toMatchObject({ version: 1, updatedAt: t.updatedAt });
  });

  it('is NOT_FOUND for a task that does not exist', async () => {
    const res = await update(randomUUID(), { title: 'x' });
    expect(res.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  it('is VERSION_CONFLICT with the current version when expectedVersion is stale, and changes nothing', async () => {
    const t = await create({ title: 'v1' });
    await update(t.id, { title: 'v2' });
    const res = await update(t.id, { title: 'stale write' }, 1);
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'VERSION_CONFLICT', currentVersion: 2 });
    expect(await stored(t.id)).toMatchObject({ title: 'v2', version: 2 });
  });

  it('lets exactly one of N concurrent updates with the same expectedVersion win', async () => {
    const t = await create({ title: 'contended' });
    const n = 10;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => update(t.id, { title: `writer ${i}` }, 1)));
    const winners = results.filter((r) => !r.body.errors);
    const losers = results.filter((r) => r.body.errors);
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(n - 1);
    for (const l of losers) expect(l.body.errors?.[0]?.extensions).toMatchObject({ code: 'VERSION_CONFLICT', currentVersion: 2 });
    const row = await stored(t.id);
    expect(row).toMatchObject({ version: 2, title: winners[0]!.body.data!.updateTask.title });
  });

  it('applies every one of N concurrent updates without expectedVersion (no lost update)', async () => {
    const t = await create({ title: 'counter' });
    const n = 8;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => update(t.id, { title: `w${i}` })));
    for (const r of results) expect(r.body.errors).toBeUndefined();
    const versions = results.map((r) => r.body.data!.updateTask.version).sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: n }, (_, i) => i + 2));
    expect((await stored(t.id)).version).toBe(n + 1);
  });

  it('makes updatedAt strictly increase even for changes within one millisecond', async () => {
    const t = await create();
    let previous = Date.parse(t.updatedAt);
    for (let i = 0; i < 5; i++) {
      const u = (await update(t.id, { title: `rapid ${i}` })).body.data!.updateTask;
      expect(Date.parse(u.updatedAt)).toBeGreaterThan(previous);
      previous = Date.parse(u.updatedAt);
    }
  });

  it('attaches and detaches a parent, versioning only the child', async () => {
    const parent = await create({ title: 'parent' });
    const child = await create({ title: 'child' });
    const attached = (await update(child.id, { parentId: parent.id })).body.data!.updateTask;
    expect(attached).toMatchObject({ parent: { id: parent.id }, version: 2 });
    expect((await stored(parent.id)).version).toBe(1);
    const detached = (await update(child.id, { parentId: null })).body.data!.updateTask;
    expect(detached).toMatchObject({ parent: null, version: 3 });
  });

  it('refuses a parent chain that loops with CYCLE_DETECTED', async () => {
    const a = await create({ title: 'a' });
    const b = await create({ title: 'b', parentId: a.id });
    const c = await create({ title: 'c', parentId: b.id });
    const self = await update(a.id, { parentId: a.id });
    expect(self.body.errors?.[0]?.extensions?.code).toBe('CYCLE_DETECTED');
    const loop = await update(a.id, { parentId: c.id });
    expect(loop.body.errors?.[0]?.extensions?.code).toBe('CYCLE_DETECTED');
    expect((await stored(a.id)).parent_id).toBeNull();
  });

  it('never lets two concurrent parent changes close a loop', async () => {
    for (let round = 0; round < 5; round++) {
      const a = await create({ title: `a${round}` });
      const b = await create({ title: `b${round}` });
      const [r1, r2] = await Promise.all([update(a.id, { parentId: b.id }), update(b.id, { parentId: a.id })]);
      const codes = [r1, r2].map((r) => r.body.errors?.[0]?.extensions?.code ?? 'OK').sort();
      expect(codes).toEqual(['CYCLE_DETECTED', 'OK']);
    }
  });

  it('is NOT_FOUND when the new parent does not exist', async () => {
    const t = await create();
    const res = await update(t.id, { parentId: randomUUID() });
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND', field: 'parentId' });
  });
});
