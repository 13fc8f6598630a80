/**
 * The event hub and its streams on a real database, with a tiny queue and page so their edge cases happen with a
 * handful of events: a consumer slower than the feed overflows its queue and falls back to reading the feed
 * itself (memory bounded), and still gets every event once, in order; a feed held back by an older running
 * transaction delivers nothing past it until that transaction ends, then everything.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { EventHub } from '../../src/subscriptions/hub.js';
import { isAfter } from '../../src/events/feed.position.js';
import { readHead } from '../../src/events/event.repository.js';
import type { TaskEvent } from '../../src/events/event.entity.js';
import { useServer, waitFor } from '../helpers/server.js';

const { db, server } = useServer('subs_hub');
const hubs: EventHub[] = [];
afterAll(async () => {
  await Promise.all(hubs.map((h) => h.stop()));
});

async function startHub(): Promise<EventHub> {
  const hub = new EventHub({ log: server.app.log, queueLimit: 5, pageSize: 7, streamPageSize: 6, pollIntervalMs: 60_000 });
  hubs.push(hub);
  await hub.start(server.app.orm()!.em);
  return hub;
}

async function createTasks(n: number): Promise<string[]> {
  const inputs = Array.from({ length: n }, (_, i) => ({ title: `hub ${i}` }));
  const res = await server.gql<{ createTasks: Array<{ id: string }> }>('mutation($inputs: [CreateTaskInput!]!) { createTasks(inputs: $inputs) { id } }', { inputs });
  expect(res.body.errors).toBeUndefined();
  return res.body.data!.createTasks.map((t) => t.id);
}

describe('the event hub', () => {
  it('reads nothing while no stream is open, and a later stream starts at the head, not where the hub stopped', async () => {
    const hub = await startHub();
    const before = await createTasks(3);
    // Transaction ids are the whole cluster's: another test file's open transaction can hold these events back.
    // The stream must open once they have settled, so "before it opened" is true of them.
    const c = await db.client();
    const { rows } = await c.query<{ xid: string; id: string }>(
      'select xid::text, id::text from task_event where task_id = any($1::uuid[]) order by xid desc, id desc limit 1',
      [before],
    );
    await c.end();
    const last = { xid: BigInt(rows[0]!.xid), id: BigInt(rows[0]!.id) };
    await waitFor(async () => {
      const head = await readHead(server.app.orm()!.em.fork());
      return !isAfter(last, head);
    }, 'the three events to settle');
    hub.wake();
    hub.wake();
    expect(hub.delivered).toBe(0);
    const stream = await hub.subscribe({ filter: {} });
    const [fresh] = await createTasks(1);
    hub.wake();
    // The three events from before the stream opened are not handed to it: the first one is the fresh task's.
    expect(((await stream.next()).value as TaskEvent).taskId).toBe(fresh);
    expect(hub.delivered).toBe(1);
    await stream.return();
  });

  it('lets a slow consumer fall back to reading the feed when its queue overflows, and loses nothing', async () => {
    const hub = await startHub();
    const stream = await hub.subscribe({ filter: {} });
    const ids = await createTasks(40);
    hub.wake();
    // The consumer has not taken anything yet: 40 events overflow a queue of 5.
    await waitFor(() => stream.mode === 'catching-up', 'the stream to fall back to the feed');
    const got: TaskEvent[] = [];
    while (got.length < 40) {
      got.push((await stream.next()).value as TaskEvent);
    }
    expect(got.map((e) => e.taskId)).toEqual(ids);
    // Back to live: a new event arrives through the queue.
    const [late] = await createTasks(1);
    hub.wake();
    expect(((await stream.next()).value as TaskEvent).taskId).toBe(late);
    expect(stream.mode).toBe('live');
    await stream.return();
    expect(hub.active).toBe(0);
  });

  it('holds back events committed after an older transaction that is still running, then delivers them in order', async () => {
    const hub = await startHub();
    const stream = await hub.subscribe({ filter: {} });
    const blocker = await db.client();
    await blocker.query('begin');
    await blocker.query('select pg_current_xact_id()'); // an xid older than the events below: the feed waits for it
    const ids = await createTasks(3);
    hub.wake();
    let first: TaskEvent | undefined;
    void stream.next().then((r) => (first = r.value as TaskEvent));
    // The hub has read the feed and found the events waiting behind the open transaction: it delivered none.
    await waitFor(() => hub.holdingBack, 'the hub to see the held-back events');
    expect(first).toBeUndefined();
    await blocker.query('commit'); // ends without a notification: the held-back re-read must find the events
    await waitFor(() => first, 'the first held-back event');
    const rest = [await stream.next(), await stream.next()].map((r) => (r.value as TaskEvent).taskId);
    expect([first!.taskId, ...rest]).toEqual(ids);
    await stream.return();
  });
});
