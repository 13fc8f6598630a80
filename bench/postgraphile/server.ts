/**
 * PostGraphile V5 over the bench database, as a peer of our server: the amber preset, the `pg` adaptor, grafserv's
 * `node:http` adapter, the schema built once at start (no watch, no GraphiQL). The only addition to what PostGraphile
 * infers from the tables is two list conditions (`statusIn`, `priorityIn`) on `allTasks`, through graphile-utils'
 * `addPgTableCondition`: the amber preset's `condition` compares each column with one value, and Q2 filters by
 * several statuses and priorities.
 *
 * Environment: DATABASE_URL (required), PORT (0 = any free port), HOST (127.0.0.1), DB_POOL_MAX (10: the pool is
 * sized like ours and the baseline's). `GET /readyz` answers 200 once the schema is built and the database answers;
 * `GET /sql-statements` gives the statements sent so far (the harness counts an operation's from two readings around
 * it, one request at a time).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { postgraphile } from 'postgraphile';
import { makePgService } from 'postgraphile/adaptors/pg';
import { grafserv } from 'postgraphile/grafserv/node';
import { PostGraphileAmberPreset } from 'postgraphile/presets/amber';
import { addPgTableCondition, jsonPgSmartTags } from 'postgraphile/utils';

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  process.stderr.write('bench/postgraphile/server.ts needs DATABASE_URL\n');
  process.exit(1);
}

const pool = new pg.Pool({
  connectionString: databaseUrl,
  max: Number(process.env.DB_POOL_MAX ?? 10),
  idleTimeoutMillis: 30_000,
  application_name: 'task-tracker-postgraphile',
});
pool.on('error', (err) => process.stderr.write(`pool error: ${err.message}\n`));

/** Statements sent on any connection of the pool, counted as they are handed to pg. */
let statements = 0;
pool.on('connect', (client) => {
  // pg's `query` has a dozen overloads; the wrapper passes every call through unchanged and only counts it.
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    statements++;
    return query(...args);
  };
});

/** `<column> = any(<list>::<enum>[])` on `task`, from a GraphQL list of the column's enum. */
function listCondition(field: string, column: string, enumType: string, pgType: string) {
  return addPgTableCondition(
    { schemaName: 'public', tableName: 'task' },
    field,
    (build) => {
      const { GraphQLList, GraphQLNonNull } = build.graphql;
      const type = build.getInputTypeByName(enumType);
      return { description: `${column} is one of these (null: any)`, type: new GraphQLList(new GraphQLNonNull(type)) };
    },
    (value, { sql, sqlTableAlias, sqlValueWithCodec, build }) => {
      if (value == null) return null;
      const { listOfCodec, TYPES } = build.dataplanPg;
      return sql`${sqlTableAlias}.${sql.identifier(column)} = any(${sqlValueWithCodec(value, listOfCodec(TYPES.text))}::${sql.raw(pgType)}[])`;
    },
  );
}

/**
 * What the benchmark's operations need beyond the amber preset's defaults, which order and filter only by indexed
 * columns and never order by an enum: ordering by `priority` (Q2; PostgreSQL orders an enum by its declaration, as
 * ours does), `archivedAt: null` in a condition (Q3 and Q4 list unarchived tasks; the partial indexes they use are
 * `where archived_at is null`, which amber does not count), and dependencies by `createdAt` (our order for them).
 */
const tags = jsonPgSmartTags({
  version: 1,
  config: {
    class: {
      task: { attribute: { priority: { tags: { behavior: '+orderBy' } }, archived_at: { tags: { isIndexed: true } } } },
      task_dependency: { attribute: { created_at: { tags: { isIndexed: true } } } },
    },
  },
});

const preset: GraphileConfig.Preset = {
  extends: [PostGraphileAmberPreset],
  plugins: [tags, listCondition('statusIn', 'status', 'TaskStatus', 'task_status'), listCondition('priorityIn', 'priority', 'TaskPriority', 'task_priority')],
  pgServices: [makePgService({ pool, schemas: ['public'] })],
  grafserv: { graphqlPath: '/graphql', graphiql: false, watch: false },
  grafast: { explain: false },
};

const pgl = postgraphile(preset);
const serv = pgl.createServ(grafserv);
// grafserv's plain handler (addTo's only extra is websockets, which the bench does not use): requests it does not
// serve come back through `next`, where /readyz is answered.
const handle = serv.createHandler();

let ready: Promise<unknown> | undefined;
const server = createServer((req, res) => {
  handle(req, res, () => {
    if (req.method === 'GET' && req.url === '/sql-statements') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ statements }));
    if (req.method !== 'GET' || req.url !== '/readyz') return void res.writeHead(404).end();
    ready ??= Promise.all([pgl.getSchemaResult(), pool.query('select 1')]);
    ready.then(
      () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ready"}'),
      (err: unknown) => {
        ready = undefined;
        process.stderr.write(`not ready: ${err instanceof Error ? err.message : String(err)}\n`);
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"status":"not ready"}');
      },
    );
  });
});
// Fastify's default keep-alive timeout, as the baseline sets it: idle benchmark connections are treated alike.
server.keepAliveTimeout = 72_000;

server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
  const { port, address } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ msg: 'listening', url: `http://${address}:${port}` })}\n`);
});

const shutdown = () => server.close(() => void Promise.resolve(pgl.release()).then(() => pool.end()).then(() => process.exit(0)));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
