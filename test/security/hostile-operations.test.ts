/**
 * Operations built to hurt: depth, alias, directive, token and cost bombs, fragment cycles, huge page sizes,
 * deeply nested or wide filters, and bodies over MAX_BODY_BYTES. Each is refused fast (well under a second),
 * cheaply (no SQL at all) and with its code and an HTTP status below 500.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { OperationReport } from '../../src/app.js';
import { useServer } from '../helpers/server.js';

// The defaults of every limit: MAX_BODY_BYTES 16 MiB, MAX_QUERY_DEPTH 10, MAX_ALIASES 20, MAX_DIRECTIVES 50,
// MAX_TOKENS 5000, MAX_QUERY_COST 10000.
const { server } = useServer('bombs');

interface Refusal {
  status: number;
  codes: string[];
  ms: number;
  report: OperationReport;
}

/** Sends one operation with its own request id; returns what the client saw and the server's report of it. */
async function attempt(body: unknown): Promise<Refusal> {
  const requestId = `bomb-${randomUUID()}`;
  const started = performance.now();
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as { errors?: Array<{ extensions?: { code?: string } }> };
  const ms = performance.now() - started;
  return { status: res.status, codes: [...new Set((json.errors ?? []).map((e) => e.extensions?.code ?? 'none'))], ms, report: await server.report(requestId) };
}

/**
 * Refused with exactly `code`, in under a second, without one SQL statement; with HTTP 400 when refused before
 * execution (docs/API.md, "Status codes"), else below 500 (a resolver's BAD_USER_INPUT comes with 200, as GraphQL
 * over HTTP has it).
 */
async function expectRefused(body: unknown, code: string): Promise<void> {
  const { status, codes, ms, report } = await attempt(body);
  expect(codes).toEqual([code]);
  if (code === 'QUERY_TOO_COMPLEX' || code === 'GRAPHQL_VALIDATION_FAILED') expect(status).toBe(400);
  expect(status).toBeLessThan(500);
  expect(ms).toBeLessThan(1000);
  expect(report.sqlStatements).toBe(0);
}

const nest = (depth: number, inner: string) => `${'subtasks { nodes { '.repeat(depth)}${inner}${' } }'.repeat(depth)}`;

describe('operation bombs', () => {
  it('refuses a depth bomb with QUERY_TOO_COMPLEX', async () => {
    await expectRefused({ query: `{ tasks(first: 1) { nodes { ${nest(12, 'id')} } } }` }, 'QUERY_TOO_COMPLEX');
    await expectRefused({ query: `{ tasks(first: 1) { nodes { ${'parent { '.repeat(30)}id${' }'.repeat(30)} } } }` }, 'QUERY_TOO_COMPLEX');
  });

  it('refuses an alias bomb with QUERY_TOO_COMPLEX', async () => {
    const aliases = Array.from({ length: 200 }, (_, i) => `a${i}: health { database }`).join(' ');
    await expectRefused({ query: `{ ${aliases} }` }, 'QUERY_TOO_COMPLEX');
    await expectRefused({ query: `{ ${Array.from({ length: 21 }, (_, i) => `t${i}: __typename`).join(' ')} }` }, 'QUERY_TOO_COMPLEX');
  });

  it('refuses a directive bomb and a token bomb with QUERY_TOO_COMPLEX', async () => {
    await expectRefused({ query: `{ ${'__typename @include(if: true) '.repeat(60)} }` }, 'QUERY_TOO_COMPLEX');
    await expectRefused({ query: `{ ${'__typename '.repeat(6000)} }` }, 'QUERY_TOO_COMPLEX');
  });

  it('refuses a cost bomb (pages of pages of pages) with QUERY_TOO_COMPLEX', async () => {
    await expectRefused({ query: `{ tasks(first: 100) { nodes { ${nest(2, 'id title').replaceAll('subtasks {', 'subtasks(first: 100) {')} } } }` }, 'QUERY_TOO_COMPLEX');
    const wide = Array.from({ length: 5 }, (_, i) => `l${i}: tasks(first: 100) { nodes { id subtasks(first: 30) { nodes { id } } } }`).join(' ');
    await expectRefused({ query: `{ ${wide} }` }, 'QUERY_TOO_COMPLEX');
  });

  it('refuses fragment cycles and fragment fan-out with a validation error or QUERY_TOO_COMPLEX', async () => {
    await expectRefused({ query: '{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }' }, 'GRAPHQL_VALIDATION_FAILED');
    await expectRefused({ query: '{ tasks { nodes { ...T } } } fragment T on Task { id parent { ...T } }' }, 'GRAPHQL_VALIDATION_FAILED');
    // Each fragment spreads the next one twice: 2^12 copies of the last selection.
    const fragments = Array.from({ length: 12 }, (_, i) => `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`).join(' ');
    await expectRefused({ query: `{ ...F0 } ${fragments} fragment F12 on Query { tasks(first: 100) { nodes { id } } }` }, 'QUERY_TOO_COMPLEX');
  });

  it('refuses huge and negative page sizes', async () => {
    await expectRefused({ query: '{ tasks(first: 2147483647) { nodes { id } } }' }, 'QUERY_TOO_COMPLEX');
    // The estimate takes `first` from the variables before they are coerced: too costly before it is too big.
    await expectRefused({ query: 'query($n: Int) { tasks(first: $n) { nodes { id } } }', variables: { n: 2 ** 31 } }, 'QUERY_TOO_COMPLEX');
    await expectRefused({ query: 'query($n: Int) { tasks(first: $n) { nodes { id } } }', variables: { n: 'all' } }, 'BAD_USER_INPUT');
    await expectRefused({ query: '{ tasks(first: 101) { nodes { id } } }' }, 'BAD_USER_INPUT');
    await expectRefused({ query: '{ tasks(last: -1) { nodes { id } } }' }, 'BAD_USER_INPUT');
    await expectRefused({ query: '{ taskEvents(first: 1000) { nodes { id } } }' }, 'BAD_USER_INPUT');
  });

  it('refuses filters nested too deep or holding too many conditions, inline or as variables', async () => {
    const deep = (levels: number): unknown => (levels === 0 ? { search: 'x' } : { and: [deep(levels - 1)], or: [{ not: { isRoot: true } }] });
    const query = 'query($f: TaskFilter) { tasks(filter: $f) { totalCount } }';
    await expectRefused({ query, variables: { f: deep(6) } }, 'BAD_USER_INPUT');
    await expectRefused({ query, variables: { f: deep(40) } }, 'BAD_USER_INPUT');
    await expectRefused({ query, variables: { f: { or: Array.from({ length: 1000 }, (_, i) => ({ search: `s${i}` })) } } }, 'BAD_USER_INPUT');
    await expectRefused({ query: `{ tasks(filter: ${'{ not: '.repeat(30)}{ isRoot: true }${' }'.repeat(30)}) { totalCount } }` }, 'BAD_USER_INPUT');
  });
});

describe('bodies that are too big or too deep', () => {
  /** Sends raw text; resolves with the status, the codes, the time, and whether GraphQL ever saw the request. */
  async function sendRaw(body: string) {
    const requestId = `raw-${randomUUID()}`;
    const seen: string[] = [];
    const listener = (r: OperationReport) => seen.push(r.requestId);
    server.app.events.on('operation', listener);
    try {
      const started = performance.now();
      const res = await fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': requestId }, body });
      const json = (await res.json()) as { errors: Array<{ extensions: { code: string } }> };
      const ms = performance.now() - started;
      // An operation sent after it is reported after it: by then a report of the refused one would be in too.
      const after = `after-${randomUUID()}`;
      await server.gql('{ __typename }', {}, { 'x-request-id': after });
      await server.report(after);
      return { status: res.status, codes: json.errors.map((e) => e.extensions.code), ms, reachedGraphQL: seen.includes(requestId) };
    } finally {
      server.app.events.off('operation', listener);
    }
  }

  it('answers a body over MAX_BODY_BYTES (16 MiB) with 413 before GraphQL sees it', async () => {
    const body = JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(16 * 1024 * 1024) } });
    expect(await sendRaw(body)).toMatchObject({ status: 413, codes: ['BAD_REQUEST'], reachedGraphQL: false });
    expect((await sendRaw(body)).ms).toBeLessThan(1000);
  });

  it('answers JSON nested deeper than the parser allows with 400 before GraphQL sees it', async () => {
    const filter = `${'{"not":'.repeat(500_000)}{}${'}'.repeat(500_000)}`;
    const result = await sendRaw(`{"query":"query($f: TaskFilter) { tasks(filter: $f) { totalCount } }","variables":{"f":${filter}}}`);
    expect(result).toMatchObject({ status: 400, codes: ['BAD_REQUEST'], reachedGraphQL: false });
    expect(result.ms).toBeLessThan(1000);
  });
});
