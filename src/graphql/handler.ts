/**
 * Runs one GraphQL HTTP request through Apollo (the glue @as-integrations/fastify provides, owned here so the
 * operation can be bounded by OPERATION_TIMEOUT_MS). A timed-out operation is answered at once with
 * SERVICE_UNAVAILABLE; its execution keeps running to its end in the background (statement timeouts bound it), and
 * its result is discarded.
 */
import { Readable } from 'node:stream';
import { HeaderMap, type ApolloServer, type HTTPGraphQLRequest } from '@apollo/server';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { GraphQLContext } from './context.js';

function toGraphQLRequest(request: FastifyRequest): HTTPGraphQLRequest {
  const headers = new HeaderMap();
  for (const [key, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
  }
  const query = request.url.indexOf('?');
  return { method: request.method.toUpperCase(), headers, search: query >= 0 ? request.url.slice(query) : '', body: request.body };
}

/**
 * Builds the handler.
 *
 * @param context builds the operation's context (called once Apollo needs it).
 * @param timeoutMs OPERATION_TIMEOUT_MS; 0 means none.
 * The returned handler takes `onExecution`, given the execution's promise: it settles when the operation has
 * really ended (after a timeout too), which is when the in-flight registry may let it go; and optionally
 * `extraHeaders`, asked once the operation has been executed, for headers that depend on what it did (`x-min-lsn`).
 */
export function graphqlHandler(
  apollo: ApolloServer<GraphQLContext>,
  context: (request: FastifyRequest) => Promise<GraphQLContext>,
  timeoutMs: number,
): (
  request: FastifyRequest,
  reply: FastifyReply,
  onExecution: (execution: Promise<unknown>) => void,
  extraHeaders?: () => Promise<Array<[string, string]>>,
) => Promise<unknown> {
  return async (request, reply, onExecution, extraHeaders) => {
    const execution = apollo.executeHTTPGraphQLRequest({ httpGraphQLRequest: toGraphQLRequest(request), context: () => context(request) });
    onExecution(execution);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = timeoutMs > 0 ? new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs))) : undefined;
    const result = await (timedOut ? Promise.race([execution, timedOut]) : execution);
    clearTimeout(timer);
    if (result === 'timeout') {
      const message = `Service unavailable: the operation ran longer than OPERATION_TIMEOUT_MS (${timeoutMs} ms). Try again shortly, or ask for less.`;
      return reply.code(503).type('application/json; charset=utf-8').send({ errors: [{ message, extensions: { code: 'SERVICE_UNAVAILABLE', reason: 'OPERATION_TIMEOUT' } }] });
    }
    for (const [name, value] of result.headers) void reply.header(name, value);
    for (const [name, value] of (await extraHeaders?.()) ?? []) void reply.header(name, value);
    void reply.code(result.status ?? 200);
    if (result.body.kind === 'complete') return result.body.string;
    return reply.send(Readable.from(result.body.asyncIterator));
  };
}
