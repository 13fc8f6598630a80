import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';

const { db, server } = useServer('status');

const STATUSES = ['PENDING', 'IN_PROGRESS', 'REVIEW', 'BLOCKED', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
type Status = (typeof STATUSES)[number];
// The machine of docs/API.md ("Status machine"), written out independently of the server's table.
const ALLOWED: Record<Status, Status[]> = {
  PENDING: ['IN_PROGRESS', 'BLOCKED', 'CANCELLED'],
  IN_PROGRESS: ['REVIEW', 'COMPLETED', 'FAILED', 'BLOCKED', 'CANCELLED', 'PENDING'],
  REVIEW: ['COMPLETED', 'IN_PROGRESS', 'FAILED', 'CANCELLED'],
  BLOCKED: ['PENDING', 'IN_PROGRESS', 'CANCELLED'],
  FAILED: ['PENDING', 'CANCELLED'],
  COMPLETED: ['PENDING'],
  CANCELLED: ['PENDING'],
};

const FIELDS = `id status version progress result errorMessage retryCount startedAt completedAt actualMinutes availableTransitions
  executions { totalCount nodes { id status startedAt completedAt progress logs { at level message } context } }`;

interface TaskOut {
  id: string;
  status: Status;
  version: number;
  progress: number;
  result: string | null;
  errorMessage: string | null;
  retryCount: number;
  startedAt: string | null;
  completedAt: string | null;
  actualMinutes: number | null;
  availableTransitions: Status[];
  executions: {
    totalCount: number;
    nodes: Array<{ id: string; status: Status; startedAt: string; completedAt: string | null; progress: number; logs: Array<{ level: string; message: string; at: string }>; context: unknown }>;
  };
}

async function create(extra = ''): Promise<TaskOut> {
  const res = await server.gql<{ createTask: TaskOut }>(`mutation { createTask(input: { title: "machine" ${extra} }) { ${FIELDS} } }`);
  expect(res.body.errors).toBeUndefined();
  return res.body.data!.createTask;
}

/** Puts a task in `status` directly in the database (arranging, not testing). */
async function arrange(id: string, status: Status): Promise<void> {
  const c = await db.client();
  await c.query('update task set status = $2 where id = $1', [id, status]);
  await c.end();
}

async function transition(id: string, to: Status, extra = '') {
  return server.gql<{ transitionTask: TaskOut }>(`mutation { transitionTask(id: "${id}", to: ${to}${extra}) { ${FIELDS} } }`);
}

describe('the status machine', () => {
  for (const from of STATUSES) {
    it(`from ${from} allows exactly ${ALLOWED[from].join(', ')}`, async () => {
      const t = await create();
      await arrange(t.id, from);
      const read = await server.gql<{ task: TaskOut }>(`{ task(id: "${t.id}") { availableTransitions } }`);
      expect(read.body.data!.task.availableTransitions).toEqual(ALLOWED[from]);
      for (const to of STATUSES) {
        if (ALLOWED[from].includes(to)) continue;
        const res = await transition(t.id, to);
        expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_TRANSITION', from, to });
        // The status it already has included: `allowed` still lists where it can go.
        expect(res.body.errors?.[0]?.extensions?.allowed).toEqual(ALLOWED[from]);
      }
      for (const to of ALLOWED[from]) {
        const fresh = await create();
        await arrange(fresh.id, from);
        const res = await transition(fresh.id, to);
        expect(res.body.errors).toBeUndefined();
        expect(res.body.data!.transitionTask).toMatchObject({ status: to, version: 2 });
      }
    });
  }

  it('opens an execution on entering IN_PROGRESS and closes it with the next status', async () => {
    const t = await create('context: { env: "ci" }');
    const started = (await server.gql<{ startTask: TaskOut }>(`mutation { startTask(id: "${t.id}") { ${FIELDS} } }`)).body.data!.startTask;
    expect(started.status).toBe('IN_PROGRESS');
    expect(started.startedAt).not.toBeNull();
    expect(started.executions.nodes).toHaveLength(1);
    expect(started.executions.nodes[0]).toMatchObject({ status: 'IN_PROGRESS', completedAt: null, startedAt: started.startedAt, context: { env: 'ci' } });

    const review = (await transition(t.id, 'REVIEW')).body.data!.transitionTask;
    expect(review.executions.nodes[0]).toMatchObject({ status: 'REVIEW' });
    expect(review.executions.nodes[0]!.completedAt).not.toBeNull();

    const again = (await transition(t.id, 'IN_PROGRESS')).body.data!.transitionTask;
    // startedAt is set the first time only; a second run opens a second execution, oldest first.
    expect(again.startedAt).toBe(started.startedAt);
    expect(again.executions.totalCount).toBe(2);
    expect(again.executions.nodes.map((e) => e.status)).toEqual(['REVIEW', 'IN_PROGRESS']);
  });

  it('sets completedAt, progress 1, result and actualMinutes on completion, and clears completedAt on reopening', async () => {
    const t = await create();
    await server.gql(`mutation { startTask(id: "${t.id}") { id } }`);
    const c = await db.client();
    await c.query(`update task set started_at = now() - interval '90 minutes' where id = $1`, [t.id]);
    await c.end();
    const done = (await server.gql<{ completeTask: TaskOut }>(`mutation { completeTask(id: "${t.id}", result: "shipped") { ${FIELDS} } }`)).body.data!
      .completeTask;
    expect(done).toMatchObject({ status: 'COMPLETED', progress: 1, result: 'shipped', actualMinutes: 90, version: 3 });
    expect(done.completedAt).not.toBeNull();
    expect(done.executions.nodes[0]).toMatchObject({ status: 'COMPLETED', progress: 1 });
    const reopened = (await transition(t.id, 'PENDING')).body.data!.transitionTask;
    expect(reopened).toMatchObject({ status: 'PENDING', completedAt: null });
  });

  it('records the error on failure and counts retries', async () => {
    const t = await create();
    await server.gql(`mutation { startTask(id: "${t.id}") { id } }`);
    const failed = (await server.gql<{ failTask: TaskOut }>(`mutation { failTask(id: "${t.id}", errorMessage: "disk full") { ${FIELDS} } }`)).body
      .data!.failTask;
    expect(failed).toMatchObject({ status: 'FAILED', errorMessage: 'disk full', retryCount: 0 });
    expect(failed.completedAt).not.toBeNull();
    const retried = (await server.gql<{ retryTask: TaskOut }>(`mutation { retryTask(id: "${t.id}") { ${FIELDS} } }`)).body.data!.retryTask;
    expect(retried).toMatchObject({ status: 'PENDING', retryCount: 1, completedAt: null });
    const notFailed = await server.gql(`mutation { retryTask(id: "${t.id}") { id } }`);
    expect(notFailed.body.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_TRANSITION', from: 'PENDING', to: 'PENDING' });
  });

  it('refuses moving a task to the status it has', async () => {
    const t = await create();
    const res = await transition(t.id, 'PENDING');
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_TRANSITION', from: 'PENDING', to: 'PENDING' });
  });

  it('checks expectedVersion on transitionTask', async () => {
    const t = await create();
    const stale = await transition(t.id, 'IN_PROGRESS', ', expectedVersion: 7');
    expect(stale.body.errors?.[0]?.extensions).toMatchObject({ code: 'VERSION_CONFLICT', currentVersion: 1 });
    expect((await transition(t.id, 'IN_PROGRESS', ', expectedVersion: 1')).body.data!.transitionTask.status).toBe('IN_PROGRESS');
  });

  it('is NOT_FOUND for a task that does not exist', async () => {
    const res = await server.gql(`mutation { startTask(id: "${randomUUID()}") { id } }`);
    expect(res.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});

describe('status changes under load', () => {
  it('startTask sends five statements (lock, blockers, event, execution, task) and completeTask four (no blockers) besides BEGIN/COMMIT', async () => {
    const t = await create();
    const start = await server.gql(`mutation { startTask(id: "${t.id}") { id status } }`, {}, { 'x-request-id': `start-${t.id}` });
    expect(start.body.errors).toBeUndefined();
    const done = await server.gql(`mutation { completeTask(id: "${t.id}", result: "ok") { id status } }`, {}, { 'x-request-id': `done-${t.id}` });
    expect(done.body.errors).toBeUndefined();
    expect((await server.report(`start-${t.id}`)).sqlStatements).toBe(5);
    expect((await server.report(`done-${t.id}`)).sqlStatements).toBe(4);
  });

  it('of concurrent startTask calls on one task exactly one wins; one execution, one event, version 2', async () => {
    const t = await create();
    const results = await Promise.all(Array.from({ length: 6 }, () => server.gql(`mutation { startTask(id: "${t.id}") { version } }`)));
    const won = results.filter((r) => !r.body.errors);
    expect(won).toHaveLength(1);
    for (const r of results.filter((x) => x.body.errors)) {
      expect(r.body.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_TRANSITION', from: 'IN_PROGRESS', to: 'IN_PROGRESS' });
    }
    const c = await db.client();
    const { rows } = await c.query<{ executions: number; events: number; version: number }>(
      `select (select count(*)::int from task_execution where task_id = $1) as executions,
              (select count(*)::int from task_event where task_id = $1 and kind = 'STATUS_CHANGED') as events,
              (select version from task where id = $1) as version`,
      [t.id],
    );
    await c.end();
    expect(rows[0]).toEqual({ executions: 1, events: 1, version: 2 });
  });
});

describe('reportProgress', () => {
  it('sets progress and appends a log entry to the open execution while IN_PROGRESS', async () => {
    const t = await create();
    await server.gql(`mutation { startTask(id: "${t.id}") { id } }`);
    const p1 = await server.gql<{ reportProgress: TaskOut }>(
      `mutation { reportProgress(id: "${t.id}", progress: 0.25, message: "quarter way") { ${FIELDS} } }`,
    );
    expect(p1.body.errors).toBeUndefined();
    const after1 = p1.body.data!.reportProgress;
    expect(after1).toMatchObject({ progress: 0.25, version: 3 });
    expect(after1.executions.nodes[0]).toMatchObject({ progress: 0.25, logs: [{ level: 'INFO', message: 'quarter way' }] });
    const p2 = await server.gql<{ reportProgress: TaskOut }>(
      `mutation { reportProgress(id: "${t.id}", progress: 0.5, message: "slow disk", level: WARNING) { ${FIELDS} } }`,
    );
    expect(p2.body.data!.reportProgress.executions.nodes[0]!.logs.map((l) => [l.level, l.message])).toEqual([
      ['INFO', 'quarter way'],
      ['WARNING', 'slow disk'],
    ]);
    const p3 = await server.gql<{ reportProgress: TaskOut }>(`mutation { reportProgress(id: "${t.id}", progress: 0.75) { ${FIELDS} } }`);
    expect(p3.body.data!.reportProgress.executions.nodes[0]!.logs).toHaveLength(2);
    expect(p3.body.data!.reportProgress).toMatchObject({ progress: 0.75, version: 5 });
    // Same progress, no message: nothing changes, no event, same version.
    const p4 = await server.gql<{ reportProgress: TaskOut }>(`mutation { reportProgress(id: "${t.id}", progress: 0.75) { version } }`);
    expect(p4.body.data!.reportProgress.version).toBe(5);
  });

  it('is INVALID_TRANSITION outside IN_PROGRESS and BAD_USER_INPUT outside 0..1', async () => {
    const t = await create();
    const pending = await server.gql(`mutation { reportProgress(id: "${t.id}", progress: 0.5) { id } }`);
    expect(pending.body.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_TRANSITION', from: 'PENDING', allowed: ALLOWED.PENDING });
    await server.gql(`mutation { startTask(id: "${t.id}") { id } }`);
    const bad = await server.gql(`mutation { reportProgress(id: "${t.id}", progress: 1.01) { id } }`);
    expect(bad.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'progress' });
  });
});
