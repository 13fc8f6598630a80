/**
 * A body over MAX_BODY_BYTES gets its 413 whichever way the client uploads: Node's fetch, a client that writes the
 * whole body before it reads, and `Expect: 100-continue` (refused without `100 Continue`). The server must not
 * reset the connection over an unread upload, or such a client never sees the answer.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';

const LIMIT = 65_536;
const MESSAGE = `The request body is larger than MAX_BODY_BYTES (${LIMIT} bytes)`;
const { server } = useServer('body_limit', { MAX_BODY_BYTES: String(LIMIT) });

interface Response {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** A JSON body of `size` bytes that would be a valid operation were it not too large. */
function operation(size: number): string {
  const head = '{"query":"{ __typename }","variables":{"pad":"';
  return `${head}${'x'.repeat(size - head.length - 3)}"}}`;
}

/** Parses the complete responses at the start of `data` (1xx ones included); a partial one at the end is left out. */
function parse(data: Buffer): Response[] {
  const responses: Response[] = [];
  let at = 0;
  for (;;) {
    const end = data.indexOf('\r\n\r\n', at);
    if (end < 0) return responses;
    const [statusLine = '', ...lines] = data.subarray(at, end).toString('latin1').split('\r\n');
    const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    const status = Number(statusLine.split(' ')[1]);
    const length = status < 200 ? 0 : Number(headers.get('content-length') ?? 0);
    if (data.length < end + 4 + length) return responses;
    responses.push({ status, headers, body: data.subarray(end + 4, end + 4 + length).toString('utf8') });
    at = end + 4 + length;
  }
}

/**
 * A raw connection that does not read until told to: `send` resolves once the kernel took every byte (or rejects
 * with the write error), and only `responses` reads.
 */
async function rawConnection() {
  const { hostname, port } = new URL(server.url);
  const socket = net.connect({ port: Number(port), host: hostname });
  // Paused before it connects, Node never starts reading: the answer waits in the kernel until `responses`.
  socket.pause();
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let received = Buffer.alloc(0);
  let closed = false;
  socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined); // surfaced by `send`, or as a missing answer
  return {
    socket,
    send: (bytes: string | Buffer) => new Promise<void>((resolve, reject) => socket.write(bytes, (err) => (err ? reject(err) : resolve()))),
    /** Reads until the responses so far satisfy `enough` (by default: a final, non-1xx one arrived in full). */
    responses: (enough = (responses: Response[]) => responses.some((r) => r.status >= 200)) =>
      new Promise<Response[]>((resolve, reject) => {
        const check = () => {
          const responses = parse(received);
          if (enough(responses)) resolve(responses);
          else if (closed) reject(new Error(`the connection closed early; received ${JSON.stringify(received.toString('latin1'))}`));
          else return;
          socket.off('data', check).off('close', check);
        };
        socket.on('data', check).on('close', check);
        socket.resume();
        check();
      }),
    /** Reads until the connection closes; resolves with every response received on it. */
    closed: () =>
      new Promise<Response[]>((resolve) => {
        if (closed) return resolve(parse(received));
        socket.once('close', () => resolve(parse(received))).resume();
      }),
  };
}

const head = (length: number, extra = '') =>
  `POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n${extra}\r\n`;

/** The 413 of a too-large body, in the GraphQL error shape. */
function expectTooLarge(status: number, headers: { get(name: string): string | null | undefined }, body: string) {
  expect(status).toBe(413);
  expect(headers.get('content-type')).toMatch(/^application\/json/);
  expect(headers.get('x-request-id')).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
  expect(JSON.parse(body)).toEqual({ errors: [{ message: MESSAGE, extensions: { code: 'BAD_REQUEST' } }] });
}

describe('a body over MAX_BODY_BYTES', () => {
  it.each([
    ['1 MiB', 1024 * 1024],
    ['8 MiB', 8 * 1024 * 1024],
  ])('is answered 413 to Node\'s fetch (%s)', async (_label, size) => {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': `too-large-${size}` },
      body: operation(size),
    });
    expectTooLarge(res.status, res.headers, await res.text());
    expect(res.headers.get('x-request-id')).toBe(`too-large-${size}`);
  });

  it('is answered 413 to a client that writes the whole request before it reads', async () => {
    const connection = await rawConnection();
    // More than loopback's socket buffers hold: the write completes only if the server reads the upload.
    const body = operation(8 * 1024 * 1024);
    // Fails with EPIPE or ECONNRESET if the server resets the connection over the unread upload.
    await connection.send(head(body.length) + body);
    const [answer, ...more] = await connection.responses();
    expectTooLarge(answer!.status, { get: (n) => answer!.headers.get(n) }, answer!.body);
    expect(answer!.headers.get('connection')).toBe('close');
    expect(more).toEqual([]);
    expect((await connection.closed()).map((r) => r.status)).toEqual([413]);
  });

  it('is refused without 100 Continue when the client sends Expect: 100-continue', async () => {
    const connection = await rawConnection();
    await connection.send(head(1024 * 1024, 'expect: 100-continue\r\n'));
    // The first and only response is the 413: a 100 would come before it.
    const responses = await connection.responses();
    expect(responses.map((r) => r.status)).toEqual([413]);
    expectTooLarge(413, { get: (n) => responses[0]!.headers.get(n) }, responses[0]!.body);
    connection.socket.end(); // as curl does: the body is not sent, the request is over
    // Nothing more on the connection, neither a 100 nor a second answer to the half-close.
    expect((await connection.closed()).map((r) => r.status)).toEqual([413]);
  });
});

describe('a body within MAX_BODY_BYTES', () => {
  it('is invited with 100 Continue when the client sends Expect: 100-continue, then answered', async () => {
    const connection = await rawConnection();
    const body = JSON.stringify({ query: '{ __typename }' });
    await connection.send(head(Buffer.byteLength(body), 'expect: 100-continue\r\n'));
    const [invitation] = await connection.responses((responses) => responses.length > 0);
    expect(invitation?.status).toBe(100);
    await connection.send(body);
    const responses = await connection.responses();
    expect(responses.map((r) => r.status)).toEqual([100, 200]);
    expect(JSON.parse(responses[1]!.body)).toEqual({ data: { __typename: 'Query' } });
    connection.socket.end();
  });

  it('is served after refusals, on a fresh connection', async () => {
    const res = await server.gql('{ __typename }');
    expect([res.status, res.body]).toEqual([200, { data: { __typename: 'Query' } }]);
  });
});
