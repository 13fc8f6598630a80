/**
 * The raw baseline: a minimal `node:http` + `pg` server that answers the benchmarked GraphQL operations with
 * hand-written SQL and the same response bytes as the real server. It recognises an operation by its
 * `operationName` (bench/operations.ts fixes them) and never parses GraphQL, so it marks what a hand-tuned
 * Node server reaches on this machine and database: the report states our throughput as a fraction of it.
 *
 * Environment: DATABASE_URL (required), PORT (0 = any free port), HOST (127.0.0.1), DB_POOL_MAX (10, the
 * server's default). It prints one JSON line `{"msg":"listening","url":...}` once it accepts requests.
 * Every response carries `x-sql-statements`: the statements the request sent (how the harness counts them).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { OperationError, RequestDb, type GraphQLBody, type Handler } from './db.js';
import { assigneePage, deepPage, prioritizedPage, taskById } from './reads.js';
import { completeTask, createTask, startTask } from './writes.js';

const HANDLERS: Record<string, Handler> = {
  Q1: taskById,
  Q2: prioritizedPage,
  Q3: assigneePage,
  Q4: deepPage,
  M1: createTask,
  StartTask: startTask,
  CompleteTask: completeTask,
};

const JSON_TYPE = 'application/json; charset=utf-8';

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  process.stderr.write('bench/baseline/server.ts needs DATABASE_URL\n');
  process.exit(1);
}

// Sized like the real server's pool (DB_POOL_MAX, default 10), so neither side wins on connection count.
const pool = new pg.Pool({
  connectionString: databaseUrl,
  max: Number(process.env.DB_POOL_MAX ?? 10),
  idleTimeoutMillis: 30_000,
  application_name: 'task-tracker-baseline',
});
pool.on('error', (err) => process.stderr.write(`pool error: ${err.message}\n`));

function send(res: ServerResponse, status: number, body: GraphQLBody, statements = 0): void {
  // Apollo writes JSON.stringify(result) + "\n"; so do we, for byte-identical bodies.
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text), 'x-sql-statements': String(statements) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function graphql(req: IncomingMessage, res: ServerResponse): Promise<void> {
  let request: { operationName?: unknown; variables?: unknown };
  try {
    request = JSON.parse(await readBody(req)) as typeof request;
  } catch {
    return send(res, 400, { errors: [{ message: 'The request body is not valid JSON', extensions: { code: 'BAD_REQUEST' } }] });
  }
  const handler = typeof request.operationName === 'string' ? HANDLERS[request.operationName] : undefined;
  if (!handler) {
    const message = `The baseline answers only the operations named ${Object.keys(HANDLERS).join(', ')}`;
    return send(res, 400, { errors: [{ message, extensions: { code: 'BAD_REQUEST' } }] });
  }
  const db = new RequestDb(pool);
  try {
    const variables = (request.variables ?? {}) as Record<string, unknown>;
    send(res, 200, await handler(db, variables), db.statements);
  } catch (err) {
    if (err instanceof OperationError) {
      return send(res, 200, { errors: [{ message: err.message, extensions: { code: err.code } }], data: null }, db.statements);
    }
    process.stderr.write(`operation ${String(request.operationName)} failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    send(res, 500, { errors: [{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] }, db.statements);
  }
}

const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/graphql') return void graphql(req, res);
  if (req.method === 'GET' && req.url === '/readyz') {
    return void pool.query('select 1').then(
      () => res.writeHead(200, { 'content-type': JSON_TYPE }).end('{"status":"ready"}'),
      () => res.writeHead(503, { 'content-type': JSON_TYPE }).end('{"status":"not ready"}'),
    );
  }
  res.writeHead(404, { 'content-type': JSON_TYPE }).end('{"errors":[{"message":"Not found","extensions":{"code":"BAD_REQUEST"}}]}');
});
// Fastify's default keep-alive timeout, so idle benchmark connections are treated alike on both sides.
server.keepAliveTimeout = 72_000;

server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
  const { port, address } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ msg: 'listening', url: `http://${address}:${port}` })}\n`);
});

const shutdown = () => server.close(() => void pool.end().then(() => process.exit(0)));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
