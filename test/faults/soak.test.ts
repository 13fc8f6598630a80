/**
 * A 1,000-request soak mixing valid, invalid and aborted requests: afterwards no connection is in use, none is
 * `idle in transaction`, and the server still answers.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { startServer, useServer, waitFor } from '../helpers/server.js';

const { db } = useServer('soak_setup');

/** A small deterministic generator, so a failing run can be replayed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

describe('soak', () => {
  it('ends 1,000 mixed requests with no connection in use and none idle in transaction', async () => {
    const name = `tt-soak-${randomBytes(3).toString('hex')}`;
    const server = await startServer(db.url, { DB_APPLICATION_NAME: name, DB_POOL_MAX: '6' });
    const random = rng(20261127);
    const ids: string[] = [];
    const outcomes = { ok: 0, rejected: 0, aborted: 0, errors: new Map<string, number>() };
    const post = async (body: unknown, signal?: AbortSignal) =>
      fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });

    const one = async (i: number) => {
      const pick = random();
      const id = ids.length ? ids[Math.floor(random() * ids.length)]! : randomUUID();
      const valid = [
        { query: 'mutation($t: String!) { createTask(input: { title: $t, tags: ["soak"] }) { id } }', variables: { t: `soak ${i}` } },
        { query: '{ tasks(first: 20, filter: { tagsAny: ["soak"] }) { totalCount nodes { id parent { id } isBlocked } } }' },
        { query: `mutation { updateTask(id: "${id}", input: { priority: HIGH }) { version } }` },
        { query: `mutation { startTask(id: "${id}") { status } }` },
        { query: '{ taskStatistics { total blocked } }' },
      ];
      const invalid = [
        { query: '{ tasks(first: 500) { nodes { id } } }' },
        { query: 'mutation { createTask(input: { title: "" }) { id } }' },
        { query: '{ tasks(after: "not-a-cursor") { nodes { id } } }' },
        { query: '{ nope }' },
        { query: '{ tasks {' },
        'not json at all',
      ];
      if (pick < 0.55) {
        const res = await post(valid[Math.floor(random() * valid.length)]);
        const body = (await res.json()) as { data?: { createTask?: { id: string } }; errors?: Array<{ extensions: { code: string } }> };
        if (body.data?.createTask) ids.push(body.data.createTask.id);
        for (const e of body.errors ?? []) outcomes.errors.set(e.extensions.code, (outcomes.errors.get(e.extensions.code) ?? 0) + 1);
        outcomes.ok++;
      } else if (pick < 0.8) {
        const choice = invalid[Math.floor(random() * invalid.length)];
        const res =
          typeof choice === 'string'
            ? await fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: choice })
            : await post(choice);
        expect(res.status).toBeLessThan(500);
        await res.arrayBuffer();
        outcomes.rejected++;
      } else {
        // Aborted mid-flight: the client goes away, the server must still finish cleanly.
        const controller = new AbortController();
        const pending = post(valid[Math.floor(random() * 3)], controller.signal);
        setTimeout(() => controller.abort(), Math.floor(random() * 5));
        await pending.then((r) => r.arrayBuffer()).catch(() => undefined);
        outcomes.aborted++;
      }
    };

    try {
      let next = 0;
      const lanes = Array.from({ length: 20 }, async () => {
        while (next < 1000) await one(next++);
      });
      await Promise.all(lanes);
      expect(outcomes.ok + outcomes.rejected + outcomes.aborted).toBe(1000);
      expect(outcomes.errors.get('INTERNAL_SERVER_ERROR') ?? 0).toBe(0);

      // Every aborted request has finished on the server too.
      await waitFor(async () => {
        const h = await server.gql<{ health: { pool: { used: number; pending: number } } }>('{ health { pool { used pending } } }');
        return h.body.data?.health.pool.used === 0 && h.body.data.health.pool.pending === 0;
      }, 'the pool to be idle');
      const observer = new pg.Client({ connectionString: db.url });
      await observer.connect();
      const { rows } = await observer.query<{ state: string; n: number }>(
        "select state, count(*)::int as n from pg_stat_activity where application_name = $1 group by state",
        [name],
      );
      await observer.end();
      expect(rows.filter((r) => r.state !== 'idle')).toEqual([]);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      expect((await server.gql('{ tasks(first: 1) { nodes { id } } }')).body.errors).toBeUndefined();
    } finally {
      await server.stop();
    }
    // 1,000 requests take 10-25 s on a quiet 2-core machine; under a parallel suite they share the cores.
  }, 120_000);
});
