/**
 * SQL-injection and LIKE-wildcard strings in every string argument are stored literally (read back equal, in the
 * API and in the table) and matched literally (search, the exact-match list filters). Property-based, fixed seed.
 */
import type pg from 'pg';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';

const { db, server } = useServer('injection');
let sql: pg.Client;
beforeAll(async () => {
  sql = await db.client();
});

const INJECTIONS = [
  "'; drop table task; --", "' or '1'='1", "' or 1=1 --", '%', '_', '\\', '%%', '_%_', '\\%', '\\_', '\\\\', '$1', '$$', '?', ':id',
  "'); delete from task_event; --", '" or ""="', '; select pg_sleep(10)', '/* */', "E'\\x41'", "x'||'y", '\\x00', 'NULL', '*',
  'İ', 'ß', 'ǅ', '\u2028', '😀', '\u200b',
];
const injection = fc.constantFrom(...INJECTIONS);
/** Storable text: no NUL (PostgreSQL refuses it, as BAD_USER_INPUT), no lone surrogates, not a prototype key. */
const literal = fc
  .oneof(
    injection,
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
    fc.tuple(injection, fc.string({ unit: 'grapheme', maxLength: 10 }), injection).map((p) => p.join('')),
  )
  .filter((s) => s.trim().length > 0 && !s.includes('\u0000') && !['__proto__', 'constructor'].includes(s));

interface Found {
  tasks: { nodes: Array<{ id: string }> };
}

async function create(input: Record<string, unknown>): Promise<string> {
  const res = await server.gql<{ createTask: { id: string } }>('mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }', { i: input });
  expect(res.body.errors, JSON.stringify(input)).toBeUndefined();
  return res.body.data!.createTask.id;
}

const find = async (filter: Record<string, unknown>) =>
  (await server.gql<Found>('query($f: TaskFilter) { tasks(first: 100, filter: $f) { nodes { id } } }', { f: filter })).body.data!.tasks.nodes.map((n) => n.id);

describe('injection strings', () => {
  it('are stored literally in every string argument, and matched literally by search and the list filters', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(literal, async (s) => {
        const tag = `run-${(run += 1)}`;
        const shortTag = s.trim().length <= 64 ? s.trim() : 'long';
        const input = { title: `[${s}]`, description: s, assignee: `[${s}]`, createdBy: `[${s}]`, tags: [tag, shortTag], metadata: { [s]: s, nested: { v: s } }, context: { s } };
        const id = await create(input);
        const stored = await sql.query('select title, description, assignee, created_by, tags, metadata, context from task where id = $1', [id]);
        const { createdBy, ...columns } = input;
        expect(stored.rows[0]).toEqual({ ...columns, created_by: createdBy });
        const read = await server.gql(`{ task(id: "${id}") { title description assignee createdBy tags metadata context } }`);
        expect(read.body.data).toEqual({ task: input });

        // A decoy only a wildcard bug would match: the string with its LIKE wildcards replaced (or its first character dropped).
        const decoyText = /[%_\\]/.test(s) ? s.replace(/[%_\\]/g, 'Q') : Array.from(s).slice(1).join('');
        const decoy = await create({ title: `<${decoyText}>`, description: decoyText, tags: [tag] });
        const searched = await find({ search: s, tagsAll: [tag] });
        expect(searched).toContain(id);
        // Case folding of non-ASCII text differs between JavaScript and the database's locale: judge the decoy on ASCII only.
        if (/^[\x20-\x7e]*$/.test(s)) {
          const decoyMatches = [`<${decoyText}>`, decoyText].some((t) => t.toLowerCase().includes(s.toLowerCase()));
          expect(searched.includes(decoy), `search ${JSON.stringify(s)} vs decoy ${JSON.stringify(decoyText)}`).toBe(decoyMatches);
        }
        expect(await find({ assignee: [`[${s}]`], createdBy: [`[${s}]`], tagsAny: [shortTag], tagsAll: [tag] })).toEqual([id]);

        const updated = await server.gql('mutation($id: ID!, $i: UpdateTaskInput!) { updateTask(id: $id, input: $i) { title description assignee tags } }', {
          id,
          i: { title: `(${s})`, description: `${s}${s}`, assignee: `(${s})`, tags: [tag, shortTag] },
        });
        expect(updated.body.data).toEqual({ updateTask: { title: `(${s})`, description: `${s}${s}`, assignee: `(${s})`, tags: [tag, shortTag] } });
      }),
      { numRuns: 120, seed: 20_261_128, endOnFailure: true },
    );
  });

  it('reach execution logs, results and error messages literally', async () => {
    await fc.assert(
      fc.asyncProperty(literal, async (s) => {
        const id = await create({ title: 'runs' });
        await server.gql(`mutation { startTask(id: "${id}") { id } }`);
        await server.gql('mutation($id: ID!, $m: String) { reportProgress(id: $id, progress: 0.5, message: $m) { id } }', { id, m: s });
        const failed = await server.gql<{ failTask: { errorMessage: string; executions: { nodes: Array<{ logs: Array<{ message: string }> }> } } }>(
          'mutation($id: ID!, $e: String) { failTask(id: $id, errorMessage: $e) { errorMessage executions { nodes { logs { message } } } } }',
          { id, e: s },
        );
        expect(failed.body.data?.failTask).toEqual({ errorMessage: s, executions: { nodes: [{ logs: [{ message: s }] }] } });
      }),
      { numRuns: 40, seed: 20_261_129, endOnFailure: true },
    );
  });
});
