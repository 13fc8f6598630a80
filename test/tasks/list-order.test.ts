import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';

const { db, server } = useServer('order');

type Field = 'CREATED_AT' | 'UPDATED_AT' | 'PRIORITY' | 'DUE_AT' | 'TITLE' | 'STATUS';
type Order = Array<{ field: Field; direction: 'ASC' | 'DESC' }>;
interface Seed {
  id: string;
  title: string;
  priority: string;
  status: string;
  dueAt: string | null;
  createdAt: string;
  updatedAt: string;
}
interface Conn {
  totalCount?: number;
  edges: Array<{ cursor: string; node: { id: string } }>;
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
}

const PRIORITY_RANK = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];
const STATUS_RANK = ['PENDING', 'IN_PROGRESS', 'REVIEW', 'BLOCKED', 'COMPLETED', 'FAILED', 'CANCELLED'];
const TITLES = ['alpha', 'bravo', 'charlie'];
const at = (base: number, seconds: number) => new Date(base + seconds * 1000).toISOString();
const T0 = Date.UTC(2026, 0, 1);

const LIST = `query List($orderBy: [TaskOrder!], $first: Int, $after: String, $last: Int, $before: String) {
  tasks(orderBy: $orderBy, first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`;

async function list(variables: Record<string, unknown>) {
  return server.gql<{ tasks: Conn }>(LIST, variables);
}
async function page(variables: Record<string, unknown>): Promise<Conn> {
  const res = await list(variables);
  expect(res.body.errors).toBeUndefined();
  return res.body.data!.tasks;
}

// 40 rows with ties on every key (few titles, priorities, due dates and instants) and due dates missing on some.
const seeded: Seed[] = [];

beforeAll(async () => {
  const c = await db.client();
  for (let i = 0; i < 40; i++) {
    const row: Seed = {
      id: randomUUID(),
      title: TITLES[i % 3]!,
      priority: PRIORITY_RANK[i % 4]!,
      status: STATUS_RANK[(i * 3) % 7]!,
      dueAt: i % 5 === 0 ? null : at(T0 + 86_400_000 * 30, (i % 6) * 3600),
      createdAt: at(T0, i % 8),
      updatedAt: at(T0 + 86_400_000, i % 9),
    };
    seeded.push(row);
    await c.query(
      `insert into task (id, title, type, priority, status, created_by, due_at, created_at, updated_at)
       values ($1, $2, 'FEATURE', $3, $4, 'seed', $5, $6, $7)`,
      [row.id, row.title, row.priority, row.status, row.dueAt, row.createdAt, row.updatedAt],
    );
  }
});

/** The contract's order, independently: enum ranks, due dates missing last in both directions, id last. */
function expected(order: Order): string[] {
  const value = (r: Seed, f: Field): string | number | null =>
    f === 'PRIORITY' ? PRIORITY_RANK.indexOf(r.priority) : f === 'STATUS' ? STATUS_RANK.indexOf(r.status)
      : f === 'DUE_AT' ? r.dueAt : f === 'TITLE' ? r.title : f === 'CREATED_AT' ? r.createdAt : r.updatedAt;
  const cmp = (a: string | number, b: string | number) => (a < b ? -1 : a > b ? 1 : 0);
  const keys = order.length ? order : [{ field: 'CREATED_AT' as const, direction: 'DESC' as const }];
  return [...seeded]
    .sort((a, b) => {
      for (const { field, direction } of keys) {
        const x = value(a, field);
        const y = value(b, field);
        if (x === y) continue;
        if (x === null) return 1;
        if (y === null) return -1;
        return cmp(x, y) * (direction === 'DESC' ? -1 : 1);
      }
      return cmp(a.id, b.id) * (keys.at(-1)!.direction === 'DESC' ? -1 : 1);
    })
    .map((r) => r.id);
}

async function walkForward(orderBy: Order, first: number): Promise<string[]> {
  const ids: string[] = [];
  let after: string | null = null;
  for (let n = 0; n < 100; n++) {
    const conn = await page({ orderBy, first, after });
    ids.push(...conn.edges.map((e) => e.node.id));
    expect(conn.pageInfo.hasPreviousPage).toBe(after !== null);
    if (!conn.pageInfo.hasNextPage) return ids;
    after = conn.pageInfo.endCursor;
  }
  throw new Error('pagination did not end');
}

async function walkBackward(orderBy: Order, last: number): Promise<string[]> {
  let ids: string[] = [];
  let before: string | null = null;
  for (let n = 0; n < 100; n++) {
    const conn = await page({ orderBy, last, before });
    ids = [...conn.edges.map((e) => e.node.id), ...ids];
    expect(conn.pageInfo.hasNextPage).toBe(before !== null);
    if (!conn.pageInfo.hasPreviousPage) return ids;
    before = conn.pageInfo.startCursor;
  }
  throw new Error('pagination did not end');
}

const ORDERS: Array<[string, Order]> = [
  ['default', []],
  ['PRIORITY DESC', [{ field: 'PRIORITY', direction: 'DESC' }]],
  ['DUE_AT ASC', [{ field: 'DUE_AT', direction: 'ASC' }]],
  ['DUE_AT DESC', [{ field: 'DUE_AT', direction: 'DESC' }]],
  ['STATUS ASC, DUE_AT DESC, TITLE ASC', [{ field: 'STATUS', direction: 'ASC' }, { field: 'DUE_AT', direction: 'DESC' }, { field: 'TITLE', direction: 'ASC' }]],
  ['TITLE DESC, CREATED_AT ASC', [{ field: 'TITLE', direction: 'DESC' }, { field: 'CREATED_AT', direction: 'ASC' }]],
  ['DUE_AT ASC, PRIORITY DESC', [{ field: 'DUE_AT', direction: 'ASC' }, { field: 'PRIORITY', direction: 'DESC' }]],
  ['UPDATED_AT ASC, PRIORITY ASC', [{ field: 'UPDATED_AT', direction: 'ASC' }, { field: 'PRIORITY', direction: 'ASC' }]],
];

describe('tasks orderBy', () => {
  it.each(ORDERS)('orders by %s, ending with id', async (_name, orderBy) => {
    const conn = await page({ orderBy, first: 100 });
    expect(conn.edges.map((e) => e.node.id)).toEqual(expected(orderBy));
  });

  it.each(ORDERS.flatMap(([name, order]) => [1, 3, 7].map((n) => [name, n, order] as const)))(
    'walks %s forwards in pages of %i: every row once',
    async (_name, first, orderBy) => {
      const ids = await walkForward(orderBy, first);
      expect(ids).toEqual(expected(orderBy));
    },
  );

  it.each(ORDERS.flatMap(([name, order]) => [1, 4, 9].map((n) => [name, n, order] as const)))(
    'walks %s backwards with last: %i and before: every row once',
    async (_name, last, orderBy) => {
      const ids = await walkBackward(orderBy, last);
      expect(ids).toEqual(expected(orderBy));
    },
  );

  it('puts CRITICAL first under PRIORITY DESC and tasks without a due date last both ways', async () => {
    const byPriority = await page({ orderBy: [{ field: 'PRIORITY', direction: 'DESC' }], first: 10 });
    const critical = new Set(seeded.filter((r) => r.priority === 'CRITICAL').map((r) => r.id));
    expect(byPriority.edges.every((e) => critical.has(e.node.id))).toBe(true);
    const undated = new Set(seeded.filter((r) => r.dueAt === null).map((r) => r.id));
    for (const direction of ['ASC', 'DESC']) {
      const ids = (await page({ orderBy: [{ field: 'DUE_AT', direction }], first: 100 })).edges.map((e) => e.node.id);
      expect(new Set(ids.slice(-undated.size))).toEqual(undated);
    }
  });

  it('takes the direction ASC by default', async () => {
    const res = await server.gql<{ tasks: Conn }>(`{ tasks(orderBy: [{ field: TITLE }], first: 100) { edges { node { id } } } }`);
    expect(res.body.data!.tasks.edges.map((e) => e.node.id)).toEqual(expected([{ field: 'TITLE', direction: 'ASC' }]));
  });

  it('gives the final rows for last without before, with exact hasPreviousPage', async () => {
    const orderBy: Order = [{ field: 'DUE_AT', direction: 'DESC' }];
    const all = expected(orderBy);
    const tail = await page({ orderBy, last: 5 });
    expect(tail.edges.map((e) => e.node.id)).toEqual(all.slice(-5));
    expect(tail.pageInfo).toMatchObject({ hasPreviousPage: true, hasNextPage: false });
    expect((await page({ orderBy, last: all.length })).pageInfo.hasPreviousPage).toBe(false);
    expect((await page({ orderBy, last: all.length - 1 })).pageInfo.hasPreviousPage).toBe(true);
    expect((await page({ orderBy, first: all.length })).pageInfo.hasNextPage).toBe(false);
    expect((await page({ orderBy, first: all.length - 1 })).pageInfo.hasNextPage).toBe(true);
  });

  it('bounds a page by both after and before', async () => {
    const orderBy: Order = [{ field: 'STATUS', direction: 'DESC' }, { field: 'DUE_AT', direction: 'ASC' }];
    const conn = await page({ orderBy, first: 100 });
    const [after, before] = [conn.edges[5]!.cursor, conn.edges[15]!.cursor];
    const between = await page({ orderBy, first: 100, after, before });
    expect(between.edges.map((e) => e.node.id)).toEqual(expected(orderBy).slice(6, 15));
    const lastBetween = await page({ orderBy, last: 3, after, before });
    expect(lastBetween.edges.map((e) => e.node.id)).toEqual(expected(orderBy).slice(12, 15));
  });

  it('accepts cursors of the default order under the same explicit order', async () => {
    const first = await page({ first: 4 });
    const next = await page({ orderBy: [{ field: 'CREATED_AT', direction: 'DESC' }], first: 4, after: first.pageInfo.endCursor });
    expect(next.edges.map((e) => e.node.id)).toEqual(expected([]).slice(4, 8));
  });

  it('counts the filter, not the page, whatever the cursors', async () => {
    const q = `query($after: String) { tasks(first: 2, after: $after, orderBy: [{ field: TITLE }]) { totalCount pageInfo { endCursor } } }`;
    const p1 = await server.gql<{ tasks: Conn }>(q, {});
    const p2 = await server.gql<{ tasks: Conn }>(q, { after: p1.body.data!.tasks.pageInfo.endCursor });
    expect(p1.body.data!.tasks.totalCount).toBe(40);
    expect(p2.body.data!.tasks.totalCount).toBe(40);
  });
});

describe('tasks orderBy errors', () => {
  const bad = async (variables: Record<string, unknown>) => {
    const res = await list(variables);
    expect(res.status).toBe(200);
    expect(res.body.data ?? null).toBeNull();
    return res.body.errors?.[0]?.extensions;
  };

  it('refuses a field listed twice', async () => {
    const orderBy = [{ field: 'TITLE', direction: 'ASC' }, { field: 'TITLE', direction: 'DESC' }];
    expect(await bad({ orderBy })).toMatchObject({ code: 'BAD_USER_INPUT', field: 'orderBy' });
  });

  it.each(['after', 'before'])('refuses as %s a cursor made under another order', async (field) => {
    const byTitle = await page({ orderBy: [{ field: 'TITLE', direction: 'ASC' }], first: 2 });
    const cursor = byTitle.pageInfo.endCursor;
    expect(await bad({ orderBy: [{ field: 'TITLE', direction: 'DESC' }], [field]: cursor })).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(await bad({ [field]: cursor })).toMatchObject({ code: 'BAD_USER_INPUT', field });
  });

  const forge = (values: unknown[]) => Buffer.from(JSON.stringify(values)).toString('base64url');
  it.each([
    ['garbage', 'not a cursor'],
    ['the wrong arity', forge(['PRIORITY:D,ID:D', 'HIGH'])],
    ['an unknown priority', forge(['PRIORITY:D,ID:D', 'URGENT', randomUUID()])],
    ['a non-uuid id', forge(['PRIORITY:D,ID:D', 'HIGH', "x' or 1=1 --"])],
    ['a null where none can be', forge(['PRIORITY:D,ID:D', null, randomUUID()])],
    ['an object', forge(['PRIORITY:D,ID:D', { a: 1 }, randomUUID()])],
  ])('refuses a cursor with %s as BAD_USER_INPUT', async (_name, cursor) => {
    for (const field of ['after', 'before']) {
      const ext = await bad({ orderBy: [{ field: 'PRIORITY', direction: 'DESC' }], [field]: cursor });
      expect(ext).toMatchObject({ code: 'BAD_USER_INPUT', field });
    }
  });

  it('reads a forged but well-formed cursor as a position', async () => {
    const cursor = forge(['PRIORITY:D,ID:D', 'HIGH', '00000000-0000-0000-0000-000000000000']);
    const conn = await page({ orderBy: [{ field: 'PRIORITY', direction: 'DESC' }], first: 100, after: cursor });
    expect(conn.edges.map((e) => e.node.id)).toEqual(expected([{ field: 'PRIORITY', direction: 'DESC' }]).filter((id) => {
      const p = seeded.find((r) => r.id === id)!.priority;
      return p === 'MEDIUM' || p === 'LOW';
    }));
  });

  it.each([
    [{ first: 2, last: 2 }, 'last'],
    [{ last: 101 }, 'last'],
    [{ last: -1 }, 'last'],
    [{ first: 101 }, 'first'],
  ])('refuses page arguments %j', async (variables, field) => {
    expect(await bad(variables)).toMatchObject({ code: 'BAD_USER_INPUT', field });
  });
});
