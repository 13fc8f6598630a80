/**
 * The typed client's `watchTaskEvents`: streams events over WebSocket, and after its connection is cut it
 * reconnects by itself and resumes after the last event it delivered: nothing missed, nothing twice.
 */
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { watchTaskEvents, type WatchedTaskEvent } from '@task-tracker/client';
import { useServer, waitFor } from '../helpers/server.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { waitForSubscriptions } from '../helpers/ws.js';

const { server } = useServer('client_watch');
let proxy: TcpProxy;
beforeAll(async () => {
  proxy = await TcpProxy.create(server.url);
  await proxy.open();
});
afterAll(async () => {
  await proxy?.close();
});

const createTask = async (title: string) => {
  const res = await server.gql<{ createTask: { id: string } }>('mutation($t: String!) { createTask(input: { title: $t }) { id } }', { t: title });
  return res.body.data!.createTask.id;
};

describe('watchTaskEvents', () => {
  it('delivers events, and resumes after a cut connection without a gap or a duplicate', async () => {
    const events: WatchedTaskEvent[] = [];
    const errors: unknown[] = [];
    // Node 20 has no global WebSocket: the client takes `ws` (a browser's, or Node 22's, is used by default).
    const stop = watchTaskEvents({ url: `${proxy.urlFor(server.url).replace(/\/$/, '')}/graphql`, webSocketImpl: WebSocket }, { kinds: ['CREATED'] }, {
      next: (e) => events.push(e),
      error: (e) => errors.push(e),
    });
    try {
      await waitForSubscriptions(server.url, 1);
      const first = await createTask('before the cut');
      await waitFor(() => events.length === 1, 'the first event');

      await proxy.close(); // every connection reset; the client starts retrying
      await waitForSubscriptions(server.url, 0);
      const missed = [await createTask('while cut 1'), await createTask('while cut 2')];
      await proxy.open();
      await waitFor(() => events.length >= 3, 'the events made while the connection was cut', 20_000);
      const after = await createTask('after the reconnect');
      await waitFor(() => events.length >= 4, 'the live event after the reconnect');

      expect(events.map((e) => e.taskId)).toEqual([first, ...missed, after]);
      expect(errors).toEqual([]);
    } finally {
      await stop();
    }
  });
});
