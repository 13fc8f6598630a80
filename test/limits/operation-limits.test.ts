import { describe, expect, it } from 'vitest';
import { startServer, useServer } from '../helpers/server.js';

const { db, server } = useServer('limits', { NODE_ENV: 'production' });

async function refused(query: string, requestId: string, limit: string) {
  const started = Date.now();
  const res = await server.gql(query, {}, { 'x-request-id': requestId });
  expect(res.status).toBe(400);
  expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_TOO_COMPLEX', setting: limit });
  expect(Date.now() - started).toBeLessThan(1000);
  // Refused before execution: not one SQL statement.
  expect((await server.report(requestId)).sqlStatements).toBe(0);
}

describe('operation limits', () => {
  it('refuses an operation nested deeper than MAX_QUERY_DEPTH (10)', async () => {
    const nine = '{ tasks { nodes { parent { parent { parent { parent { parent { parent { parent { id } } } } } } } } } }';
    expect((await server.gql(nine)).body.errors).toBeUndefined();
    const eleven = '{ tasks { nodes { parent { parent { parent { parent { parent { parent { parent { parent { parent { id } } } } } } } } } } } }';
    await refused(eleven, 'deep-1', 'MAX_QUERY_DEPTH');
  });

  it('counts depth through fragments', async () => {
    const q = `query { tasks { nodes { ...P } } } fragment P on Task { parent { parent { parent { parent { parent { parent { parent { parent { parent { id } } } } } } } } } }`;
    await refused(q, 'deep-fragment', 'MAX_QUERY_DEPTH');
  });

  it('refuses more than MAX_ALIASES (20) aliases', async () => {
    const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: health { database }`).join(' ')} }`;
    expect((await server.gql(aliases(20))).body.errors).toBeUndefined();
    await refused(aliases(21), 'aliases-1', 'MAX_ALIASES');
  });

  it('refuses more than MAX_DIRECTIVES (50) directives', async () => {
    const q = `{ ${Array.from({ length: 51 }, () => '__typename @include(if: true)').join(' ')} }`;
    await refused(q, 'directives-1', 'MAX_DIRECTIVES');
  });

  it('estimates cost with page sizes and refuses above MAX_QUERY_COST (10000)', async () => {
    // 1 + 20 * (1 + 1 + 20 * (1 + 3)) = 1641: fine.
    expect((await server.gql('{ tasks(first: 20) { nodes { subtasks(first: 20) { nodes { id title status } } } } }')).body.errors).toBeUndefined();
    // 1 + 100 * (1 + 1 + 100 * (1 + 2)) = 30201: refused, though the database holds few tasks.
    await refused('{ tasks(first: 100) { nodes { subtasks(first: 100) { nodes { id title } } } } }', 'cost-1', 'MAX_QUERY_COST');
    // Page sizes given as variables count too; without first/last a connection counts 50.
    const res = await server.gql('query($n: Int) { tasks(first: $n) { nodes { subtasks { nodes { id title } } } } }', { n: 100 }, { 'x-request-id': 'cost-2' });
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_TOO_COMPLEX', measure: 'cost', actual: 1 + 100 * (1 + 1 + 50 * 3) });
  });

  it('refuses a document with more than MAX_TOKENS tokens before parsing it all', async () => {
    const small = await startServer(db.url, { MAX_TOKENS: '50' });
    try {
      const res = await small.gql(`{ ${Array.from({ length: 60 }, () => '__typename').join(' ')} }`, {}, { 'x-request-id': 'tokens-1' });
      expect(res.status).toBe(400);
      expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_TOO_COMPLEX', setting: 'MAX_TOKENS' });
    } finally {
      await small.stop();
    }
  });

  it('turns introspection off in production unless INTROSPECTION=true', async () => {
    const off = await server.gql('{ __schema { types { name } } }');
    expect(off.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    const on = await startServer(db.url, { NODE_ENV: 'production', INTROSPECTION: 'true' });
    try {
      const res = await on.gql<{ __schema: { types: unknown[] } }>('{ __schema { types { name } } }');
      expect(res.body.data?.__schema.types.length).toBeGreaterThan(10);
    } finally {
      await on.stop();
    }
  });
});
