/**
 * Read replicas against real PostgreSQL streaming replication: a primary and a replica started for this file
 * (test/helpers/replication.ts). Pausing the replica's WAL replay makes it visibly behind, which proves where each
 * read was served: a row changed on the primary but not yet replayed is seen only by reads that went to the primary.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicationSkipReason, startReplication, type Replication } from '../helpers/replication.js';
import { skipWithout } from '../helpers/ci.js';
import { startServer, useServer, waitFor, type TestServer } from '../helpers/server.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { CreateTaskDocument, ShowTaskDocument, createClient } from '@task-tracker/client';
import { minLsnFetch } from '../../playground/src/min-lsn.js';

const skip = replicationSkipReason();
const DATABASE = 'tt_replicas';
const LSN = /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/;

const CREATE = `mutation Create($input: CreateTaskInput!) { createTask(input: $input) { id title events { totalCount } } }`;
const READ = `query Read($id: ID!) { task(id: $id) { id title events { totalCount } } }`;

interface TaskOut {
  id: string;
  title: string;
  events: { totalCount: number };
}

interface Readiness {
  status: string;
  replicas?: Array<{ name: string; state: string; lagMs: number | null; reason?: string }>;
}

describe.skipIf(skipWithout(skip))(`read replicas${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let repl: Replication;
  let server: TestServer;

  const readiness = async (): Promise<{ code: number; body: Readiness }> => {
    const res = await fetch(`${server.url}/readyz`);
    return { code: res.status, body: (await res.json()) as Readiness };
  };
  const replicaState = async () => (await readiness()).body.replicas?.[0]?.state;
  const waitForState = (state: string, timeoutMs = 20_000) => waitFor(async () => (await replicaState()) === state, `the replica to be ${state}`, timeoutMs);

  const create = async (title: string) => {
    const res = await server.gql<{ createTask: TaskOut }>(CREATE, { input: { title } });
    expect(res.body.errors).toBeUndefined();
    return { task: res.body.data!.createTask, minLsn: res.headers.get('x-min-lsn') };
  };
  const read = async (id: string, headers: Record<string, string> = {}) => {
    const res = await server.gql<{ task: TaskOut | null }>(READ, { id }, headers);
    expect(res.body.errors).toBeUndefined();
    return res.body.data!.task;
  };
  /** Changes a task's title behind the server's back, on the primary. */
  const retitleOnPrimary = (id: string, title: string) => repl.sql('primary', 'update task set title = $1 where id = $2', [title, id], DATABASE);

  beforeAll(async () => {
    repl = await startReplication();
    await repl.createDatabase(DATABASE);
    server = await startServer(repl.primaryUrl(DATABASE), {
      DATABASE_REPLICA_URLS: repl.replicaUrl(DATABASE),
      DB_REPLICA_MAX_LAG_MS: '1500',
      DB_REPLICA_WAIT_MS: '100',
    });
    await waitForState('up');
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    await repl?.destroy();
  });

  it('reports the replica on /readyz and in the metrics', async () => {
    const { code, body } = await readiness();
    expect(code).toBe(200);
    expect(body.replicas).toEqual([{ name: `127.0.0.1:${repl.replicaPort}/${DATABASE}`, state: 'up', lagMs: expect.any(Number) as number }]);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain(`db_replica_state{replica="127.0.0.1:${repl.replicaPort}/${DATABASE}"} 0`);
    expect(metrics).toMatch(/db_replica_lag_seconds\{replica="[^"]+"\} [\d.e-]+/);
  });

  it('serves plain reads from the replica: a change it has not replayed is not seen', async () => {
    const { task } = await create('original');
    await repl.caughtUp();
    await repl.pauseReplay();
    try {
      await retitleOnPrimary(task.id, 'changed on the primary');
      expect((await read(task.id))?.title).toBe('original');
    } finally {
      await repl.resumeReplay();
    }
    await repl.caughtUp();
    expect((await read(task.id))?.title).toBe('changed on the primary');
  });

  it('answers a mutation with x-min-lsn; a read sending it back sees the write while replay is paused', async () => {
    await repl.pauseReplay();
    try {
      const { task, minLsn } = await create('written while paused');
      expect(minLsn).toMatch(LSN);
      // Without the header the read goes to the replica, which has not replayed the insert.
      expect(await read(task.id)).toBeNull();
      // With it, no replica qualifies within DB_REPLICA_WAIT_MS: the primary serves it.
      expect(await read(task.id, { 'x-min-lsn': minLsn! })).toMatchObject({ id: task.id, title: 'written while paused' });
    } finally {
      await repl.resumeReplay();
    }
  });

  it('serves a read carrying x-min-lsn from the replica once it has replayed that far', async () => {
    const { task, minLsn } = await create('replayed');
    await repl.caughtUp();
    await repl.pauseReplay();
    try {
      // The replica has the task but not this later change: a read served by it shows the old title.
      await retitleOnPrimary(task.id, 'not replayed');
      expect((await read(task.id, { 'x-min-lsn': minLsn! }))?.title).toBe('replayed');
    } finally {
      await repl.resumeReplay();
    }
  });

  it('lets the request that wrote read its own write from the primary', async () => {
    await repl.pauseReplay();
    try {
      // `events` is read after the commit, by a batched hand-written query: it must see the `created` event.
      const { task } = await create('reads its own write');
      expect(task.events.totalCount).toBe(1);
    } finally {
      await repl.resumeReplay();
    }
  });

  it('has the typed client and the playground send back the last x-min-lsn they received', async () => {
    await repl.pauseReplay();
    try {
      const url = `${server.url}/graphql`;
      const client = createClient({ url });
      const { createTask } = await client.request(CreateTaskDocument, { input: { title: 'typed client' } });
      expect(client.minLsn()).toMatch(LSN);
      expect((await client.request(ShowTaskDocument, { id: createTask.id })).task?.title).toBe('typed client');
      // A client that has not written anything reads from the paused replica.
      expect((await createClient({ url }).request(ShowTaskDocument, { id: createTask.id })).task).toBeNull();

      const playgroundFetch = minLsnFetch(fetch);
      const post = async <T>(query: string, variables: Record<string, unknown>) => {
        const res = await playgroundFetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
        return ((await res.json()) as { data: T }).data;
      };
      const { createTask: created } = await post<{ createTask: TaskOut }>(CREATE, { input: { title: 'playground' } });
      expect((await post<{ task: TaskOut | null }>(READ, { id: created.id })).task?.title).toBe('playground');
    } finally {
      await repl.resumeReplay();
    }
  });

  it('refuses an x-min-lsn that is not a WAL position', async () => {
    const res = await server.gql(READ, { id: '00000000-0000-0000-0000-000000000000' }, { 'x-min-lsn': 'yesterday' });
    expect(res.status).toBe(400);
    expect(res.body.errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
  });

  it('takes a replica lagging past DB_REPLICA_MAX_LAG_MS out of rotation and back once it catches up', async () => {
    const { task } = await create('lag');
    await repl.caughtUp();
    await repl.pauseReplay();
    try {
      await retitleOnPrimary(task.id, 'newer than the replica');
      await waitForState('lagging');
      const { code, body } = await readiness();
      expect(code).toBe(200);
      expect(body.replicas?.[0]).toMatchObject({ state: 'lagging', reason: expect.stringContaining('behind the primary') as string });
      expect(body.replicas?.[0]?.lagMs).toBeGreaterThan(1500);
      // Out of rotation: plain reads go to the primary and see the change.
      expect((await read(task.id))?.title).toBe('newer than the replica');
    } finally {
      await repl.resumeReplay();
    }
    await waitForState('up');
    // Back in rotation: a change it has not replayed is again not seen.
    await repl.pauseReplay();
    try {
      await retitleOnPrimary(task.id, 'newest');
      expect((await read(task.id))?.title).toBe('newer than the replica');
    } finally {
      await repl.resumeReplay();
    }
    expect(server.logs.some((l) => String(l.msg).startsWith('replica taken out of rotation (lagging)'))).toBe(true);
  });

  it('keeps reading (from the primary) while the replica is stopped, and uses it again once it is back', async () => {
    const { task } = await create('outage');
    await repl.caughtUp();
    await repl.stopReplica();
    try {
      // A read right away succeeds, whether it reaches the dead replica first (and runs again on the primary, see
      // the next test) or the monitor has already taken the replica out of rotation.
      expect((await read(task.id))?.title).toBe('outage');
      await waitForState('down');
      const { code, body } = await readiness();
      expect(code).toBe(200);
      expect(body).toMatchObject({ status: 'ready', replicas: [{ state: 'down' }] });
      expect((await read(task.id))?.title).toBe('outage');
    } finally {
      await repl.startReplica();
    }
    await waitForState('up');
    await repl.caughtUp();
    await repl.pauseReplay();
    try {
      await retitleOnPrimary(task.id, 'after the outage');
      expect((await read(task.id))?.title).toBe('outage');
    } finally {
      await repl.resumeReplay();
    }
  });

  it('runs a read that fails on the replica again on the primary, and takes the replica out of rotation at once', async () => {
    // The replica behind a proxy that can drop it instantly; probes only every second, so the read below
    // normally reaches the replica before the monitor learns anything.
    const proxy = await TcpProxy.create(repl.replicaUrl(DATABASE));
    await proxy.open();
    const other = await startServer(repl.primaryUrl(DATABASE), {
      DATABASE_REPLICA_URLS: proxy.urlFor(repl.replicaUrl(DATABASE)),
      DB_REPLICA_MAX_LAG_MS: '3600000',
    });
    const otherState = async () => ((await (await fetch(`${other.url}/readyz`)).json()) as Readiness).replicas?.[0]?.state;
    try {
      const { task } = await create('fallback');
      await repl.caughtUp();
      for (let attempt = 1; ; attempt++) {
        await waitFor(async () => (await otherState()) === 'up', 'the replica up');
        await proxy.close();
        const res = await other.gql<{ task: TaskOut | null }>(READ, { id: task.id });
        expect(res.body.data?.task?.title).toBe('fallback');
        if (other.logs.some((l) => l.msg === 'read failed on a replica: reading from the primary')) break;
        // A probe landed in the few ms between the cut and the read, so the read went to the primary directly.
        if (attempt === 3) throw new Error('the read never reached the replica while it was in rotation');
        await proxy.open();
      }
      expect(await otherState()).toBe('down');
    } finally {
      await other.stop();
      await proxy.close();
    }
  });

  it('closes the replica pool at shutdown', async () => {
    const other = await startServer(repl.primaryUrl(DATABASE), {
      DATABASE_REPLICA_URLS: repl.replicaUrl(DATABASE),
      DB_APPLICATION_NAME: 'tt-replica-shutdown',
    });
    const connections = async () =>
      Number((await repl.sql<{ n: string }>('replica', `select count(*) as n from pg_stat_activity where application_name = 'tt-replica-shutdown'`))[0]?.n);
    try {
      await waitFor(async () => (await fetch(`${other.url}/readyz`).then((r) => r.json() as Promise<Readiness>)).replicas?.[0]?.state === 'up', 'the replica up');
      const { task } = await create('pool');
      await repl.caughtUp();
      await other.gql(READ, { id: task.id });
      expect(await connections()).toBeGreaterThan(0);
    } finally {
      await other.stop();
    }
    expect(await connections()).toBe(0);
    expect(other.logs.filter((l) => Number(l.level) >= 50)).toEqual([]);
    expect(other.logs.some((l) => l.msg === 'shutdown complete')).toBe(true);
  });
});

describe('without replicas', () => {
  const { server } = useServer('no_replicas');

  it('adds no header and reports no replicas', async () => {
    const res = await server.gql<{ createTask: TaskOut }>(CREATE, { input: { title: 'plain' } });
    expect(res.body.errors).toBeUndefined();
    expect(res.headers.get('x-min-lsn')).toBeNull();
    // The header is ignored, even when it is not a WAL position.
    const again = await server.gql(READ, { id: res.body.data!.createTask.id }, { 'x-min-lsn': 'ignored' });
    expect(again.status).toBe(200);
    const ready = (await (await fetch(`${server.url}/readyz`)).json()) as Readiness;
    expect(ready).toEqual({ status: 'ready' });
  });
});

describe('with a replica that is unreachable from the start', () => {
  // Nothing listens on port 1: every connection attempt is refused at once.
  const { server } = useServer('dead_replica', { DATABASE_REPLICA_URLS: 'postgres://postgres@127.0.0.1:1/nowhere', DB_REPLICA_WAIT_MS: '5000' });

  it('boots, stays ready, reports the replica down and serves every read from the primary', async () => {
    await waitFor(async () => ((await (await fetch(`${server.url}/readyz`)).json()) as Readiness).replicas?.[0]?.state === 'down', 'the replica reported down');
    const created = await server.gql<{ createTask: TaskOut }>(CREATE, { input: { title: 'primary only' } });
    expect(created.body.errors).toBeUndefined();
    const minLsn = created.headers.get('x-min-lsn');
    expect(minLsn).toMatch(LSN);
    for (const headers of [{}, { 'x-min-lsn': minLsn! }] as Array<Record<string, string>>) {
      const started = Date.now();
      const res = await server.gql<{ task: TaskOut | null }>(READ, { id: created.body.data!.createTask.id }, headers);
      expect(res.body.data?.task?.title).toBe('primary only');
      // With no replica in rotation there is nothing to wait for: not DB_REPLICA_WAIT_MS (5 s).
      expect(Date.now() - started).toBeLessThan(2500);
    }
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', replicas: [{ name: '127.0.0.1:1/nowhere', state: 'down', reason: expect.any(String) as string }] });
  });
});
