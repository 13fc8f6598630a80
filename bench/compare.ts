/**
 * Before any measurement: the baseline must answer exactly what our server answers, or the comparison means
 * nothing. Reads must match byte for byte (several requests of each operation); writes create different ids
 * and timestamps, so their bodies must match once UUIDs and instants are replaced by placeholders.
 */
import type { OpName } from './options.js';
import { responseProblem } from './load.js';
import { completeBody, m1Body, readBody, startBody, type ReadFixtures } from './operations.js';
import { POSTGRAPHILE_DIALECT, postgraphileAsOurs, withoutCursors } from './postgraphile/operations.js';

const SAMPLES_PER_READ = 5;

async function post(url: string, text: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text });
  return { status: res.status, body: await res.text() };
}

/** Where two strings first differ, with some context around it. */
function firstDifference(a: string, b: string, other = 'baseline'): string {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const around = (s: string) => JSON.stringify(s.slice(Math.max(0, i - 60), i + 60));
  return `first difference at byte ${i}:\n    ${'ours:'.padEnd(other.length + 2)}${around(a)}\n    ${other}: ${around(b)}`;
}

/** Ids and instants differ between two creates; everything else must not. */
export function normalize(text: string): string {
  return text
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<uuid>')
    .replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/g, '<instant>');
}

/**
 * Sends the same requests to both servers; returns a description of every mismatch (empty: they agree).
 * `poolTask` hands out fresh PENDING tasks (two per M2 check, one for each server).
 */
export async function compareServers(ours: string, baseline: string, ops: readonly OpName[], f: ReadFixtures, poolTask: () => string): Promise<string[]> {
  const problems: string[] = [];
  const check = async (label: string, a: string, b: string, exact: boolean) => {
    const [x, y] = await Promise.all([post(ours, a), post(baseline, b)]);
    const bad = responseProblem(x.status, x.body) ?? responseProblem(y.status, y.body);
    if (bad) return void problems.push(`${label}: ${bad}\n    ours:     ${x.body.slice(0, 300)}\n    baseline: ${y.body.slice(0, 300)}`);
    const [p, q] = exact ? [x.body, y.body] : [normalize(x.body), normalize(y.body)];
    if (p !== q) problems.push(`${label}: bodies differ (${exact ? 'byte for byte' : 'after normalizing ids and instants'}); ${firstDifference(p, q)}`);
  };
  for (const op of ops) {
    if (op === 'Q1' || op === 'Q2' || op === 'Q3' || op === 'Q4') {
      for (let i = 0; i < SAMPLES_PER_READ; i++) {
        const text = readBody(op, f, i);
        await check(`${op} #${i}`, text, text, true);
      }
    } else if (op === 'M1') {
      await check('M1', m1Body(3_000_000), m1Body(3_000_000), false);
    } else if (op === 'M2') {
      const [a, b] = [poolTask(), poolTask()];
      await check('M2 startTask', startBody(a), startBody(b), false);
      await check('M2 completeTask', completeBody(a), completeBody(b), false);
    }
  }
  return problems;
}

/**
 * The same check against PostGraphile: the same requests in its schema (bench/postgraphile/operations.ts), its
 * `data` mapped to our shape and compared with ours, without cursors (each server has its own): reads exactly, a
 * created task once UUIDs and instants are replaced by placeholders. `peerFixtures` carry PostGraphile's own deep
 * cursor. Returns a description of every mismatch (empty: the same data).
 */
export async function comparePostGraphile(ours: string, peer: string, ops: readonly OpName[], f: ReadFixtures, peerFixtures: ReadFixtures): Promise<string[]> {
  const problems: string[] = [];
  const check = async (label: string, op: 'Q1' | 'Q2' | 'Q3' | 'Q4' | 'M1', a: string, b: string) => {
    const [x, y] = await Promise.all([post(ours, a), post(peer, b)]);
    const bad = responseProblem(x.status, x.body) ?? responseProblem(y.status, y.body);
    if (bad) return void problems.push(`${label}: ${bad}\n    ours:         ${x.body.slice(0, 300)}\n    PostGraphile: ${y.body.slice(0, 300)}`);
    const data = (text: string) => (JSON.parse(text) as { data: Record<string, unknown> }).data;
    let p = JSON.stringify(withoutCursors(data(x.body)));
    let q = JSON.stringify(postgraphileAsOurs(op, data(y.body)));
    if (op === 'M1') [p, q] = [normalize(p), normalize(q)];
    if (p !== q) problems.push(`${label}: PostGraphile's data differs from ours; ${firstDifference(p, q, 'PostGraphile')}`);
  };
  for (const op of ops) {
    if (op === 'Q1' || op === 'Q2' || op === 'Q3' || op === 'Q4') {
      for (let i = 0; i < SAMPLES_PER_READ; i++) await check(`${op} #${i} (PostGraphile)`, op, readBody(op, f, i), POSTGRAPHILE_DIALECT.readBody(op, peerFixtures, i));
    } else if (op === 'M1') {
      await check('M1 (PostGraphile)', 'M1', m1Body(3_000_001), POSTGRAPHILE_DIALECT.m1Body(3_000_001));
    }
  }
  return problems;
}
