/**
 * Hostile input, property-based (fast-check, fixed seeds, bounded runs): generated arguments of createTask,
 * updateTask and the listings (filters, cursors, orders, page sizes) never end in INTERNAL_SERVER_ERROR or an HTTP
 * 5xx, and a refused input leaves the database as it was.
 *
 * Each field is mostly well-typed with hostile content (so the input gets past variable coercion to the service
 * and the SQL) and sometimes anything at all (so coercion itself is attacked).
 */
import type pg from 'pg';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';
import { useServer, type GqlResponse } from '../helpers/server.js';
import { feedCaughtUp } from '../helpers/feed.js';

const { db, server } = useServer('hostile');
let sql: pg.Client;
// A failure reports its first counterexample at once: shrinking inputs this size could outlast the test timeout.
const RUNS = { numRuns: 200, seed: 20_261_127, endOnFailure: true };

/** Strings that break naive SQL, LIKE patterns, JSON, escaping or Unicode handling. */
const INJECTIONS = [
  "'; drop table task; --", "' or '1'='1", '%', '_', '\\', '$1', '%_%', "\\'", '\\%', "x'||'y", '?', ':title', '${1}',
  '"; select pg_sleep(5); --', "' union select * from task_event --", '*/ /*', 'null', '{}', '[]', '\u2028', 'İ', 'ß', '😀', ' ',
];
const injection = fc.constantFrom(...INJECTIONS);
const text = fc.oneof(
  { arbitrary: injection, weight: 3 },
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 30 }), weight: 3 },
  { arbitrary: fc.tuple(fc.string({ maxLength: 8 }), injection, fc.string({ maxLength: 8 })).map((parts) => parts.join('')), weight: 3 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 30 }), weight: 1 }, // NUL and lone surrogates: PostgreSQL refuses them
  { arbitrary: fc.string({ minLength: 250, maxLength: 270 }), weight: 1 },
);
/** Anything JSON can carry, for a field that expects something else; a long list of them floods coercion. */
const wild = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  text,
  fc.constantFrom('NOPE', '', 2 ** 31, -(2 ** 31) - 1, 1.5, 1e300, -1),
  fc.array(fc.integer(), { minLength: 45, maxLength: 60 }),
);
/** Mostly `valid`, now and then anything. */
const field = <T>(valid: fc.Arbitrary<T>) => fc.oneof({ arbitrary: valid, weight: 40 }, { arbitrary: wild, weight: 1 });
const orNull = <T>(arb: fc.Arbitrary<T>) => fc.oneof({ arbitrary: arb, weight: 4 }, { arbitrary: fc.constant(null), weight: 1 });

const TYPES = ['FEATURE', 'BUG_FIX', 'REFACTOR', 'DOCUMENTATION', 'SYSTEM'];
const PRIORITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW'];
const STATUSES = ['PENDING', 'IN_PROGRESS', 'REVIEW', 'BLOCKED', 'COMPLETED', 'FAILED', 'CANCELLED'];
const ORDER_FIELDS = ['CREATED_AT', 'UPDATED_AT', 'PRIORITY', 'DUE_AT', 'TITLE', 'STATUS'];

const instant = fc.oneof(
  { arbitrary: fc.date({ min: new Date('1900-01-01'), max: new Date('2200-01-01'), noInvalidDate: true }).map((d) => d.toISOString()), weight: 8 },
  { arbitrary: fc.constantFrom('0001-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z', '1970-01-01T00:00:00+14:00', '2024-02-29T23:59:59.999-12:00'), weight: 1 },
  { arbitrary: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), weight: 1 }, // years like +275760 and -271821
);
let parentId = '';
const ids = fc.oneof(
  { arbitrary: fc.uuid(), weight: 6 },
  { arbitrary: fc.constant('parent').map(() => parentId), weight: 3 },
  { arbitrary: fc.uuid().map((id) => id.toUpperCase()), weight: 1 },
  { arbitrary: text, weight: 1 },
);
const jsonObject = fc.dictionary(text, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 });
const minutes = fc.oneof(fc.integer({ min: -3, max: 1000 }), fc.constantFrom(2 ** 31 - 1, -(2 ** 31)));

const taskFields = {
  title: field(text),
  description: field(orNull(fc.oneof({ arbitrary: text, weight: 9 }, { arbitrary: fc.string({ minLength: 9_998, maxLength: 10_002 }), weight: 1 }))),
  type: field(fc.constantFrom(...TYPES)),
  priority: field(fc.constantFrom(...PRIORITIES)),
  assignee: field(orNull(text)),
  tags: field(fc.oneof({ arbitrary: fc.array(text, { maxLength: 4 }), weight: 9 }, { arbitrary: fc.array(fc.string({ maxLength: 3 }), { minLength: 49, maxLength: 52 }), weight: 1 })),
  metadata: field(jsonObject),
  context: field(jsonObject),
  estimatedMinutes: field(orNull(minutes)),
  dueAt: field(orNull(instant)),
  parentId: field(orNull(ids)),
};
/** A few fields of `fields` (every field gets its turn across runs; all at once would nearly always be refused). */
const some = (fields: Record<string, fc.Arbitrary<unknown>>, max: number) =>
  fc
    .array(fc.oneof(...Object.entries(fields).map(([key, arb]) => arb.map((v) => ({ [key]: v })))), { minLength: 1, maxLength: max })
    .map((parts) => Object.assign({}, ...parts) as Record<string, unknown>);
const createInput = fc
  .tuple(fc.record({ title: taskFields.title }), some({ ...taskFields, id: field(orNull(ids)), createdBy: field(orNull(text)) }, 4))
  .map(([title, rest]) => ({ ...rest, ...title }));
const updateInput = some({ ...taskFields, progress: field(fc.oneof(fc.double({ min: -0.5, max: 1.5, noNaN: true }), fc.constantFrom(0, 1, 1.0000001))) }, 4);

const conditions = {
  ids: fc.array(ids, { maxLength: 3 }),
  status: fc.array(fc.constantFrom(...STATUSES), { maxLength: 3 }),
  priority: fc.array(fc.constantFrom(...PRIORITIES), { maxLength: 3 }),
  type: fc.array(fc.constantFrom(...TYPES), { maxLength: 3 }),
  assignee: fc.array(text, { maxLength: 3 }),
  createdBy: fc.array(text, { maxLength: 3 }),
  unassigned: fc.boolean(),
  tagsAny: fc.array(text, { maxLength: 3 }),
  tagsAll: fc.array(text, { maxLength: 3 }),
  parentId: ids,
  isRoot: fc.boolean(),
  isBlocked: fc.boolean(),
  search: text,
  dueBefore: instant,
  dueAfter: instant,
  createdAfter: instant,
  createdBefore: instant,
  updatedAfter: instant,
  archived: fc.constantFrom('EXCLUDE', 'INCLUDE', 'ONLY'),
};
/** One to three conditions of a filter node. */
const leaf = some(Object.fromEntries(Object.entries(conditions).map(([key, arb]) => [key, field(arb as fc.Arbitrary<unknown>)])), 3);
/** Filters nested up to `n` levels of and/or/not (MAX_FILTER_DEPTH is 5). */
const filter: fc.Memo<Record<string, unknown>> = fc.memo((n) => {
  if (n <= 0) return leaf;
  const sub = filter(n - 1);
  const nested = fc.oneof(fc.record({ and: fc.array(sub, { maxLength: 3 }) }), fc.record({ or: fc.array(sub, { maxLength: 3 }) }), fc.record({ not: sub }));
  return fc.oneof(leaf, fc.tuple(leaf, nested).map(([a, b]) => ({ ...a, ...b })));
});
const order = fc.record({ field: field(fc.constantFrom(...ORDER_FIELDS)), direction: field(fc.constantFrom('ASC', 'DESC')) }, { requiredKeys: ['field'] });
/** Orders, now and then naming a field twice (refused). */
const orders = fc.oneof({ arbitrary: fc.uniqueArray(order, { maxLength: 4, selector: (o) => o.field }), weight: 9 }, { arbitrary: fc.array(order, { maxLength: 7 }), weight: 1 });
const pageSize = field(fc.oneof({ arbitrary: fc.integer({ min: 0, max: 100 }), weight: 9 }, { arbitrary: fc.constantFrom(-1, 101, 2 ** 31 - 1, -(2 ** 31)), weight: 1 }));

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** Real cursors, collected in beforeAll, and forgeries: real signatures with hostile values in place of the keys. */
const realCursors: string[] = [];
const cursorValue = fc.oneof(text, fc.integer(), fc.double(), fc.constant(null), instant, fc.constantFrom('2024-02-31T00:00:00.000Z', '0000-01-01T00:00:00.000Z'));
const cursor = fc.oneof(
  text,
  fc.base64String({ maxLength: 40 }),
  fc.jsonValue({ maxDepth: 2 }).map(b64),
  fc.array(cursorValue, { maxLength: 8 }).map(b64),
  {
    arbitrary: fc.tuple(fc.nat(), fc.nat(), cursorValue).map(([i, k, value]) => {
      const real = JSON.parse(Buffer.from(realCursors[i % realCursors.length]!, 'base64url').toString('utf8')) as unknown[];
      real[k % real.length] = value;
      return b64(real);
    }),
    weight: 4,
  },
  { arbitrary: fc.nat().map((i) => realCursors[i % realCursors.length]!), weight: 2 },
);

const KNOWN = new Set<string>(ERROR_CODES);
/** The promise every property checks: no 5xx, no INTERNAL_SERVER_ERROR, only the contract's codes. Refused? */
function expectHandled(res: GqlResponse, input: unknown): boolean {
  const codes = (res.body.errors ?? []).map((e) => e.extensions?.code ?? 'none');
  expect(res.status, JSON.stringify(input)).toBeLessThan(500);
  expect(codes.filter((c) => !KNOWN.has(c) || c === 'INTERNAL_SERVER_ERROR'), JSON.stringify({ input, errors: res.body.errors })).toEqual([]);
  return codes.length > 0;
}

async function counts(): Promise<string> {
  const { rows } = await sql.query(
    'select (select count(*) from task) as tasks, (select count(*) from task_event) as events, (select count(*) from task_execution) as executions',
  );
  return JSON.stringify(rows[0]);
}
const rowOf = async (id: string) => JSON.stringify((await sql.query('select to_jsonb(t) as row from task t where id = $1', [id])).rows[0]);
const create = async (input: Record<string, unknown>) =>
  (await server.gql<{ createTask: { id: string } }>('mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }', { i: input })).body.data!.createTask.id;

beforeAll(async () => {
  sql = await db.client();
  parentId = await create({ title: 'parent', tags: ['seed'], dueAt: '2030-01-01T00:00:00.000Z' });
  for (let i = 0; i < 4; i += 1) await create({ title: `child ${i}`, parentId, priority: PRIORITIES[i], tags: ['seed', `t${i}`] });
  for (const orderBy of [[], ...ORDER_FIELDS.map((f) => [{ field: f, direction: 'DESC' }]), [{ field: 'DUE_AT' }, { field: 'TITLE' }]]) {
    const res = await server.gql<{ tasks: { edges: Array<{ cursor: string }> } }>('query($o: [TaskOrder!]) { tasks(first: 2, orderBy: $o) { edges { cursor } } }', { o: orderBy });
    realCursors.push(...res.body.data!.tasks.edges.map((e) => e.cursor));
  }
  await feedCaughtUp(db);
  const feed = await server.gql<{ taskEvents: { edges: Array<{ cursor: string }> } }>('{ taskEvents(first: 2) { edges { cursor } } }');
  realCursors.push(...feed.body.data!.taskEvents.edges.map((e) => e.cursor));
});

describe('hostile arguments', () => {
  it('createTask: handled, and a refused input writes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(createInput, async (input) => {
        const before = await counts();
        const res = await server.gql('mutation($i: CreateTaskInput!) { createTask(input: $i) { id title tags metadata dueAt parent { id } } }', { i: input });
        if (expectHandled(res, input)) expect(await counts(), JSON.stringify(input)).toBe(before);
      }),
      RUNS,
    );
  });

  it('updateTask: handled, and a refused input changes neither the task nor its events', async () => {
    const id = await create({ title: 'target of updates' });
    const version = fc.oneof({ arbitrary: fc.constant(undefined), weight: 3 }, { arbitrary: field(orNull(fc.integer({ min: -1, max: 60 }))), weight: 1 });
    await fc.assert(
      fc.asyncProperty(updateInput, version, async (input, expectedVersion) => {
        const [before, row] = [await counts(), await rowOf(id)];
        const res = await server.gql('mutation($id: ID!, $i: UpdateTaskInput!, $v: Int) { updateTask(id: $id, input: $i, expectedVersion: $v) { version } }', {
          id,
          i: input,
          v: expectedVersion,
        });
        if (expectHandled(res, { input, expectedVersion })) {
          expect(await counts()).toBe(before);
          expect(await rowOf(id)).toBe(row);
        }
      }),
      RUNS,
    );
  });

  it('refuses a flood of invalid variable values (over graphql-js\' 50-error limit) as BAD_USER_INPUT', async () => {
    const res = await server.gql('query($f: TaskFilter) { tasks(filter: $f) { totalCount } }', { f: { status: Array.from({ length: 60 }, () => 'NOPE') } });
    expect(res.status).toBe(400);
    expect(new Set(res.body.errors?.map((e) => e.extensions?.code))).toEqual(new Set(['BAD_USER_INPUT']));
  });

  it('tasks, subtasks, statistics and the feed: any filter, order, page size and cursor is handled, and reads write nothing', async () => {
    const listings = [
      'query($f: TaskFilter, $o: [TaskOrder!], $n: Int, $c: String, $last: Int, $before: String) { tasks(filter: $f, orderBy: $o, first: $n, after: $c, last: $last, before: $before) { totalCount edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }',
      'query($f: TaskFilter, $o: [TaskOrder!], $n: Int, $c: String, $p: ID!) { task(id: $p) { subtasks(filter: $f, orderBy: $o, first: $n, after: $c) { totalCount nodes { id } } } }',
      'query($f: TaskFilter) { taskStatistics(filter: $f) { total blocked overdue byStatus { count } byAssignee { assignee count } } }',
      'query($n: Int, $c: String, $last: Int, $before: String) { taskEvents(first: $n, after: $c, last: $last, before: $before) { nodes { id kind } pageInfo { endCursor } } }',
    ];
    const backwards = fc.oneof({ arbitrary: fc.constant({}), weight: 3 }, { arbitrary: fc.record({ last: pageSize, before: field(orNull(cursor)) }, { requiredKeys: [] }), weight: 1 });
    const forwards = fc.record({ f: field(orNull(filter(6))), o: field(orNull(orders)), n: pageSize, c: field(orNull(cursor)) }, { requiredKeys: [] });
    const page = fc.tuple(fc.constantFrom(...listings.keys()), forwards, backwards).map(([which, a, b]) => ({ which, variables: { ...a, ...(which === 0 || which === 3 ? b : {}) } }));
    const before = await counts();
    await fc.assert(
      fc.asyncProperty(page, async ({ which, variables }) => {
        const used = Object.fromEntries(Object.entries({ ...variables, p: parentId }).filter(([k]) => listings[which]!.includes(`$${k}:`)));
        expectHandled(await server.gql(listings[which]!, used), { which, used });
      }),
      { ...RUNS, numRuns: 400 },
    );
    expect(await counts()).toBe(before);
  });
});
