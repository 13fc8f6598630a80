/**
 * Request hygiene: every request refused before GraphQL runs is answered as JSON in the GraphQL error shape,
 * with a code, a request id and a message of our own: never HTML, a stack, a file path or Fastify's FST_ codes.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { startServer, useServer, waitFor } from '../helpers/server.js';

const LIMIT = 65_536;
const { db, server } = useServer('hygiene', { MAX_BODY_BYTES: String(LIMIT) });

/** Nothing a client should ever see from the server's insides. */
const LEAK = /FST_|node_modules|\/work\/|\.ts:\d|\bat [\w.<>]+ \(|stack|<html|fastify|secure-json/i;

interface Answer {
  status: number;
  headers: { get(name: string): string | null };
  text: string;
}

/** Asserts the clean error shape and returns the one error's message. */
function expectClean(answer: Answer, status: number, code: string): string {
  expect(answer.status).toBe(status);
  expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
  expect(answer.headers.get('x-request-id')).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
  expect(answer.text).not.toMatch(LEAK);
  const body = JSON.parse(answer.text) as { errors: Array<{ message: string; extensions: { code: string } }> };
  expect(body.errors).toHaveLength(1);
  expect(body.errors[0]!.extensions.code).toBe(code);
  expect(body.errors[0]!.message.length).toBeGreaterThan(0);
  return body.errors[0]!.message;
}

async function send(path: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(`${server.url}${path}`, init);
  return { status: res.status, headers: res.headers, text: await res.text() };
}

const json = (body: string, extra: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...extra },
  body,
});

/** A raw TCP connection: write bytes, then read every response the server sent until it closed the connection. */
function connect(url: string) {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  socket.on('error', () => undefined); // the server may reset after answering; what it sent is what counts
  const closed = new Promise<string>((resolve) => {
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
    socket.on('close', () => resolve(received));
  });
  return { write: (payload: string) => socket.write(payload), responses: async () => parseResponses(await closed) };
}

/** Writes raw bytes on a fresh TCP connection and returns every response on it, parsed. */
async function raw(payload: string): Promise<Answer[]> {
  const connection = connect(server.url);
  connection.write(payload);
  return connection.responses();
}

function parseResponses(data: string): Answer[] {
  return data
    .split(/(?=HTTP\/1\.1 \d{3} )/)
    .filter(Boolean)
    .map((response) => {
      const [head = '', text = ''] = response.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      return { status: Number(statusLine.split(' ')[1]), headers: { get: (n: string) => headers.get(n) ?? null }, text };
    });
}

describe('malformed bodies', () => {
  it('answers invalid JSON, an empty body and prototype-poisoning keys with 400 BAD_REQUEST', async () => {
    for (const body of ['{"query": ', '{"query":"{ __typename }"', 'nul', '{"query":"{ __typename }","__proto__":{"admin":true}}']) {
      expect(expectClean(await send('/graphql', json(body)), 400, 'BAD_REQUEST'), body).toMatch(/not valid JSON/);
    }
    expect(expectClean(await send('/graphql', json('')), 400, 'BAD_REQUEST')).toMatch(/empty/);
    const poisoned = '{"query":"{ __typename }","constructor":{"prototype":{"admin":true}}}';
    expectClean(await send('/graphql', json(poisoned)), 400, 'BAD_REQUEST');
  });

  it('answers JSON nested deeper than 128 levels with 400 BAD_REQUEST, and takes 128', async () => {
    const nested = (levels: number) => JSON.stringify({ query: '{ __typename }', variables: { deep: JSON.parse(`${'['.repeat(levels - 2)}${']'.repeat(levels - 2)}`) as unknown } });
    expect(expectClean(await send('/graphql', json(nested(129))), 400, 'BAD_REQUEST')).toMatch(/128 levels/);
    const ok = await send('/graphql', json(nested(128)));
    expect([ok.status, JSON.parse(ok.text)]).toEqual([200, { data: { __typename: 'Query' } }]);
  });

  it('answers JSON that is not an operation with 400 BAD_REQUEST', async () => {
    for (const body of ['null', '"{ __typename }"', '42', '{}', '{"query":["{ __typename }"]}', '{"query":"{ __typename }","variables":"{}"}']) {
      expectClean(await send('/graphql', json(body)), 400, 'BAD_REQUEST');
    }
  });

  it('answers wrong and missing content types with 400 or 415, and a compressed body with 415', async () => {
    const operation = JSON.stringify({ query: '{ __typename }' });
    for (const type of ['text/plain', 'application/graphql', 'application/x-www-form-urlencoded', 'application/xml']) {
      expectClean(await send('/graphql', { method: 'POST', headers: { 'content-type': type }, body: operation }), 400, 'BAD_REQUEST');
    }
    expectClean(await send('/graphql', { method: 'POST', headers: { 'content-type': 'not a type' }, body: operation }), 415, 'BAD_REQUEST');
    // fetch sets text/plain for a string body; bytes go without a content type.
    expectClean(await send('/graphql', { method: 'POST', body: new TextEncoder().encode(operation) }), 400, 'BAD_REQUEST');
    const gzip = expectClean(await send('/graphql', json(operation, { 'content-encoding': 'gzip' })), 415, 'BAD_REQUEST');
    expect(gzip).toMatch(/Compressed/);
  });
});

describe('methods and routes', () => {
  it('answers other methods on /graphql with 405 and Allow: GET, POST', async () => {
    for (const method of ['PUT', 'PATCH', 'DELETE', 'OPTIONS', 'PROPFIND']) {
      const answer = await send('/graphql', { method });
      expect(expectClean(answer, 405, 'BAD_REQUEST'), method).toMatch(new RegExp(`${method} is not allowed`));
      expect(answer.headers.get('allow')).toBe('GET, POST');
    }
    const head = await fetch(`${server.url}/graphql`, { method: 'HEAD' });
    expect(head.status).toBe(405);
    expect(head.headers.get('allow')).toBe('GET, POST');
  });

  it('answers a write to the probes and the playground with 405, and an unknown route with a JSON 404', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/playground']) {
      const answer = await send(path, json('{}'));
      expectClean(answer, 405, 'BAD_REQUEST');
      expect(answer.headers.get('allow')).toBe('GET, HEAD');
    }
    for (const path of ['/', '/graphiql', '/graphql/', '/GRAPHQL', `/${'x'.repeat(5000)}`]) {
      const message = expectClean(await send(path), 404, 'NOT_FOUND');
      expect(message.length).toBeLessThan(200);
    }
  });

  it('answers a malformed URL with 400', async () => {
    expectClean(await send('/%zz'), 400, 'BAD_REQUEST');
  });
});

describe('size limits', () => {
  it('answers a body over MAX_BODY_BYTES with 413, whatever its content type', async () => {
    const big = JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(LIMIT) } });
    expect(expectClean(await send('/graphql', json(big)), 413, 'BAD_REQUEST')).toMatch(/MAX_BODY_BYTES/);
    expectClean(await send('/graphql', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: big }), 413, 'BAD_REQUEST');
  });

  it('answers a streamed (chunked) body over the limit with 413', async () => {
    const chunk = new TextEncoder().encode('x'.repeat(8192));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > 4 * LIMIT) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body, duplex: 'half' } as RequestInit;
    expectClean(await send('/graphql', init), 413, 'BAD_REQUEST');
  });

  it('answers a declared Content-Length over the limit at once, before any body is sent', async () => {
    const [answer] = await raw(`POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000000000\r\nconnection: close\r\n\r\n`);
    expectClean(answer!, 413, 'BAD_REQUEST');
  });
});

describe('malformed HTTP', () => {
  it('answers a request line or header Node cannot parse with a JSON 400', async () => {
    for (const payload of ['GARBAGE\r\n\r\n', 'GET /healthz HTTP/1.1\r\nbad header line\r\n\r\n', 'GET / HTTP/9.9\r\n\r\n']) {
      const [answer] = await raw(payload);
      expectClean(answer!, 400, 'BAD_REQUEST');
    }
  });

  it('answers headers or a URL over Node\'s limit with a JSON 431', async () => {
    const [answer] = await raw(`GET /graphql?query=${'x'.repeat(20_000)} HTTP/1.1\r\nhost: x\r\n\r\n`);
    expect(expectClean(answer!, 431, 'BAD_REQUEST')).toMatch(/POST/);
  });
});

describe('while the server closes', () => {
  it('answers a request that completes after close began with SERVICE_UNAVAILABLE, in our shape', async () => {
    const closing = await startServer(db.url);
    // A request whose headers are half sent keeps its connection active (Node closes only idle ones on close).
    const connection = connect(closing.url);
    connection.write('GET /healthz HTTP/1.1\r\nhost: x\r\n');
    // One round trip on another connection: by its end the server has read the half-sent headers.
    expect((await fetch(`${closing.url}/healthz`)).status).toBe(200);
    const stopped = closing.app.stop();
    // The listener closes once Fastify's close has begun: new connections are refused from then on.
    await waitFor(() => fetch(`${closing.url}/healthz`).then(() => false, () => true), 'the listener to close');
    connection.write('\r\n');
    const [answer, more] = await connection.responses();
    expect(more).toBeUndefined();
    expect(answer?.headers.get('connection')).toBe('close');
    expect(answer?.headers.get('retry-after')).toBe('1');
    expectClean(answer!, 503, 'SERVICE_UNAVAILABLE');
    expect(JSON.parse(answer!.text)).toMatchObject({ errors: [{ extensions: { reason: 'SHUTTING_DOWN' } }] });
    expect(await stopped).toEqual({ clean: true });
  });
});
