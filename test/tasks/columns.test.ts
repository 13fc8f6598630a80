/**
 * Task reads take only the columns the operation's document can ask for (src/graphql/task-fields.ts): the set is
 * right for fragments, inline fragments and interfaces, and answers stay whole when one task is reached through
 * several paths of one operation.
 */
import { buildSchema, parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { loadTypeDefs } from '../../src/graphql/schema.js';
import { taskColumnsFor, taskFieldsOf } from '../../src/graphql/task-fields.js';
import { taskModel } from '../../src/tasks/task.model.js';
import { useServer } from '../helpers/server.js';
import { metadataOnly } from '../helpers/metadata.js';

const schema = buildSchema(loadTypeDefs());
const model = taskModel(metadataOnly().em);
const columnsOf = (doc: string) => taskColumnsFor(model, taskFieldsOf(schema, parse(doc)))?.names;

describe('task columns of a document', () => {
  it('takes the columns of the fields asked on tasks anywhere, plus id, parent_id and status', () => {
    expect(columnsOf('{ tasks { nodes { title dueAt } } }')).toEqual(['due_at', 'id', 'parent_id', 'status', 'title']);
    // Nested tasks, a named fragment, an inline fragment and a field asked through the Node interface.
    const doc = `query { tasks { edges { node { ...F parent { createdBy } } } }
      node(id: "x") { id ... on Task { metadata } }
      taskEvents { nodes { task { dependencies { archivedAt } } } } }
      fragment F on Task { subtasks { nodes { retryCount } } isBlocked }`;
    expect(columnsOf(doc)).toEqual(['archived_at', 'created_by', 'id', 'metadata', 'parent_id', 'retry_count', 'status']);
  });

  it('gives the same answer for the same document object (cached), and no set for a document it cannot read', () => {
    const doc = parse('{ task(id: "x") { title } }');
    expect(taskFieldsOf(schema, doc)).toBe(taskFieldsOf(schema, doc));
    // A field of Task it does not know (a schema that grew): every column, never a missing value.
    const grown = buildSchema(`${loadTypeDefs()}\nextend type Task { shiny: String }`);
    expect(taskColumnsFor(model, taskFieldsOf(grown, parse('{ task(id: "x") { shiny } }')))).toBeUndefined();
  });
});

const { server } = useServer('task_columns', { LOG_LEVEL: 'debug' });

describe('projected reads', () => {
  it('answers every field asked of a task reached by a page and by id in one operation', async () => {
    const created = await server.gql<{ createTask: { id: string } }>(
      'mutation { createTask(input: { title: "whole", description: "described", metadata: { k: 1 }, tags: ["t"], estimatedMinutes: 5 }) { id } }',
    );
    const id = created.body.data!.createTask.id;
    // The page asks for the id alone; the same task by id asks for more. Both read through the operation's loaders.
    const res = await server.gql<{ tasks: { nodes: Array<{ id: string }> }; task: Record<string, unknown> }>(
      `query($id: ID!) { tasks(first: 1) { nodes { id } } task(id: $id) { title description metadata tags estimatedMinutes createdAt version } }`,
      { id },
    );
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.tasks.nodes[0]!.id).toBe(id);
    expect(res.body.data!.task).toMatchObject({ title: 'whole', description: 'described', metadata: { k: 1 }, tags: ['t'], estimatedMinutes: 5, version: 1 });
    expect(typeof res.body.data!.task.createdAt).toBe('string');
  });

  it('reads a task by id with the asked columns only (the loaders see what the operation asked, whatever Apollo copies)', async () => {
    const created = await server.gql<{ createTask: { id: string } }>('mutation { createTask(input: { title: "narrow" }) { id } }');
    const requestId = `by-id-${created.body.data!.createTask.id}`;
    const res = await server.gql('query($id: ID!) { task(id: $id) { title } }', { id: created.body.data!.createTask.id }, { 'x-request-id': requestId });
    expect(res.body.errors).toBeUndefined();
    const statements = server.logs.filter((l) => l.msg === 'sql' && l.requestId === requestId).map((l) => String(l.sql));
    expect(statements).toHaveLength(1);
    expect(statements[0]).toContain('"t"."title"');
    expect(statements[0]).not.toContain('description');
    expect(statements[0]).not.toContain('*');
  });

  it('makes cursors from a page that asked for none of its order keys', async () => {
    const res = await server.gql<{ tasks: { edges: Array<{ cursor: string }> } }>(
      '{ tasks(first: 2, orderBy: [{ field: DUE_AT }, { field: UPDATED_AT }]) { edges { cursor node { id } } } }',
    );
    expect(res.body.errors).toBeUndefined();
    const [first] = res.body.data!.tasks.edges;
    expect(first).toBeDefined();
    const next = await server.gql('query($after: String) { tasks(first: 2, after: $after, orderBy: [{ field: DUE_AT }, { field: UPDATED_AT }]) { nodes { id } } }', {
      after: first!.cursor,
    });
    expect(next.body.errors).toBeUndefined();
  });
});
