/**
 * Compiled execution (graphql-jit, the default) against graphql-js itself (GRAPHQL_JIT=false): two servers on one
 * database answer the same operations, and every answer must be the same, status and body, field for field and
 * error for error. The operations cover what a compiled function does differently from graphql-js's walk: lists,
 * nested objects, interfaces (`node`), fragments, aliases, @skip/@include (on fields, inline fragments and spreads),
 * defaults, variables, resolver errors, masked errors, null propagation through non-null fields, introspection, and
 * the fallbacks (variables that do not coerce, recursive input types).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, useServer, type TestServer } from '../helpers/server.js';
import { createExecutableSchema } from '../../src/graphql/schema.js';
import { recursiveInputTypes } from '../../src/graphql/executor.js';

const { db, server: compiled } = useServer('jit');
let walked: TestServer;

interface Case {
  name: string;
  query: string;
  variables?: Record<string, unknown>;
}

const ids: Record<string, string> = {};

beforeAll(async () => {
  walked = await startServer(db.url, { GRAPHQL_JIT: 'false' });
  const create = async (key: string, input: Record<string, unknown>) => {
    const res = await compiled.gql<{ createTask: { id: string } }>('mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }', { input });
    expect(res.body.errors).toBeUndefined();
    ids[key] = res.body.data!.createTask.id;
  };
  await create('root', { title: 'Root', priority: 'HIGH', tags: ['a', 'b'], metadata: { team: 'core', n: 1 }, assignee: 'ada', dueAt: '2030-01-02T03:04:05.678Z' });
  await create('child', { title: 'Child', parentId: ids.root, estimatedMinutes: 30, assignee: 'bob' });
  await create('other', { title: 'Other', type: 'BUG_FIX', priority: 'CRITICAL' });
  await create('broken', { title: 'Broken', priority: 'LOW', tags: ['broken'] });
  await create('serialA', { title: 'Serial', priority: 'LOW' });
  await create('serialB', { title: 'Serial', priority: 'LOW' });
  await compiled.gql(`mutation { addTaskDependency(taskId: "${ids.child}", dependsOnId: "${ids.other}") { id } }`);
  await compiled.gql(`mutation { startTask(id: "${ids.other}") { id } }`);
  await compiled.gql(`mutation { reportProgress(id: "${ids.other}", progress: 0.5, message: "half") { id } }`);
  // Values no scalar can serialize: a field error on a nullable field, null propagation on a non-null one.
  const c = await db.client();
  await c.query(`update task set due_at = 'infinity', metadata = '["not", "an", "object"]' where id = $1`, [ids.broken]);
});

afterAll(async () => {
  await walked?.stop();
});

const FIELDS = `id title description type priority status assignee createdBy tags metadata context progress result errorMessage
  retryCount estimatedMinutes actualMinutes dueAt startedAt completedAt archivedAt createdAt updatedAt version`;

const cases = (): Case[] => [
  { name: 'one task, every field', query: `query($id: ID!) { task(id: $id) { ${FIELDS} } }`, variables: { id: ids.root } },
  { name: 'a missing task', query: 'query($id: ID!) { task(id: $id) { id } }', variables: { id: '00000000-0000-4000-8000-000000000000' } },
  {
    name: 'a page with relations and page info',
    query: `{ tasks(first: 3, filter: { archived: INCLUDE }, orderBy: [{ field: TITLE }]) { totalCount
      edges { cursor node { id title parent { id title } dependencies { id status } dependents { id } isBlocked availableTransitions } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`,
  },
  { name: 'a page backwards', query: '{ tasks(last: 2, orderBy: [{ field: PRIORITY, direction: DESC }]) { nodes { id priority } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }' },
  {
    name: 'subtasks, summary, executions and events',
    query: `query($id: ID!) { task(id: $id) { subtasks(first: 5) { totalCount nodes { id title } } subtaskSummary { total }
      executions(first: 5) { edges { cursor node { id status progress logs { message level } task { id } } } }
      events(first: 10) { edges { cursor node { kind actor changes taskId } } } } }`,
    variables: { id: ids.root },
  },
  { name: 'executions of a started task', query: 'query($id: ID!) { task(id: $id) { executions { nodes { status progress logs { message } } } } }', variables: { id: ids.other } },
  { name: 'statistics', query: '{ taskStatistics { total overdue blocked byStatus { status count } byPriority { priority count } byType { type count } } }' },
  { name: 'statistics with a recursive filter variable', query: 'query($f: TaskFilter) { taskStatistics(filter: $f) { total } }', variables: { f: { or: [{ priority: ['HIGH'] }, { not: { type: ['BUG_FIX'] } }] } } },
  {
    name: 'the node interface, inline fragments and __typename',
    query: 'query($id: ID!) { node(id: $id) { __typename id ... on Task { title } ... on TaskEvent { kind } } }',
    variables: { id: ids.child },
  },
  {
    name: 'fragments, aliases and directives',
    query: `query($yes: Boolean!, $no: Boolean!, $id: ID!) { a: task(id: $id) { ...T @include(if: $yes) ... @skip(if: $yes) { title } }
      b: task(id: $id) { ...T @include(if: $no) title @skip(if: $no) x: priority @include(if: $yes) } }
      fragment T on Task { id tags parent { ...P } } fragment P on Task { title }`,
    variables: { yes: true, no: false, id: ids.child },
  },
  { name: 'a field error on a nullable field (masked)', query: 'query($id: ID!) { task(id: $id) { id dueAt } }', variables: { id: ids.broken } },
  { name: 'null propagation from a non-null field (masked)', query: 'query($id: ID!) { task(id: $id) { id metadata } }', variables: { id: ids.broken } },
  { name: 'a failing cursor in a list', query: '{ tasks(first: 10, orderBy: [{ field: DUE_AT }]) { edges { cursor node { id } } } }' },
  { name: 'a resolver refusing its arguments', query: '{ tasks(first: 101) { nodes { id } } }' },
  { name: 'first and last together', query: '{ tasks(first: 1, last: 1) { nodes { id } } }' },
  { name: 'a cursor that is not one', query: '{ tasks(after: "nonsense") { nodes { id } } }' },
  { name: 'an id that is not a UUID', query: '{ task(id: "42") { id } }' },
  { name: 'a variable that does not coerce', query: 'query($n: Int) { tasks(first: $n) { nodes { id } } }', variables: { n: 'all' } },
  { name: 'a missing required variable', query: 'query($id: ID!) { task(id: $id) { id } }', variables: {} },
  { name: 'an enum variable out of range', query: 'query($p: [TaskPriority!]) { tasks(filter: { priority: $p }) { totalCount } }', variables: { p: ['URGENT'] } },
  { name: 'a mutation refused by the rules', query: `mutation { completeTask(id: "${ids.root}") { id status } }` },
  { name: 'a mutation with invalid input', query: `mutation { updateTask(id: "${ids.root}", input: { title: "" }) { id } }` },
  { name: 'introspection of a type', query: '{ __type(name: "Task") { name kind fields { name args { name defaultValue } type { name kind ofType { name } } } } }' },
  { name: 'introspection of the schema', query: '{ __schema { queryType { name } mutationType { name } types { name kind } directives { name locations } } }' },
];

describe('compiled execution', () => {
  it('finds the recursive input types the compiler must not be given', () => {
    expect([...recursiveInputTypes(createExecutableSchema())]).toEqual(['TaskFilter']);
  });

  it('answers every operation exactly as graphql-js does', async () => {
    for (const c of cases()) {
      // Twice each: the second request runs the compiled function the first one made.
      for (let round = 0; round < 2; round++) {
        const [jit, js] = await Promise.all([compiled.gql(c.query, c.variables), walked.gql(c.query, c.variables)]);
        expect({ case: c.name, status: jit.status, body: jit.body }).toEqual({ case: c.name, status: js.status, body: js.body });
      }
    }
    // The cases reach what they are meant to: data, field errors, masked errors and refusals alike.
    const answered = await Promise.all(cases().map((c) => compiled.gql(c.query, c.variables)));
    const codes = new Set(answered.flatMap((r) => (r.body.errors ?? []).map((e) => e.extensions?.code)));
    expect([...codes].sort()).toEqual(['BAD_USER_INPUT', 'INTERNAL_SERVER_ERROR', 'INVALID_TRANSITION']);
    expect(answered.filter((r) => r.body.data && !r.body.errors).length).toBeGreaterThan(10);
  });

  it('runs mutations one after another, as graphql-js does', async () => {
    const serial = (id: string) => `mutation { a: updateTask(id: "${id}", input: { title: "A" }) { title version }
      b: updateTask(id: "${id}", input: { title: "B" }) { title version } c: startTask(id: "${id}") { status version } }`;
    const [jit, js] = [await compiled.gql(serial(ids.serialA!)), await walked.gql(serial(ids.serialB!))];
    expect(jit.body).toEqual(js.body);
    expect(jit.body).toEqual({ data: { a: { title: 'A', version: 2 }, b: { title: 'B', version: 3 }, c: { status: 'IN_PROGRESS', version: 4 } } });
  });

});
