/**
 * CPU per statement, in this process and in the PostgreSQL backend that runs it, for one-row reads by primary key
 * through each way the server sends SQL: `em.findOne` (hydrated, on a fresh fork as a request would), a
 * QueryBuilder select `.execute('all', true)`, `em.execute`, and our own `query()` (src/db/sql.ts).
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx tsx bench/statements.ts [--n 4000] [--rounds 3]
 *
 * The ORM is the server's (ormOptions with the resilient driver and its circuit breaker), on a fresh database the
 * script migrates and seeds (bench/database.ts: an embedded PostgreSQL without DATABASE_URL). Statements run one
 * at a time; each kind runs `--n` times per round, the kinds taking turns, `--rounds` rounds; medians are printed.
 * The backend's CPU is read from /proc/<pid>/stat of every session carrying the script's application_name, so
 * PostgreSQL must run on this machine for that column (it says "n/a" otherwise).
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import type { MikroORM } from '@mikro-orm/postgresql';
import { loadConfig } from '../src/config.js';
import { createOrm, migrate, ormOptions } from '../src/db/orm.js';
import { DatabaseGuard } from '../src/db/guard.js';
import { query, sql } from '../src/db/sql.js';
import { OperationRegistry } from '../src/lifecycle/operations.js';
import { Task } from '../src/tasks/task.entity.js';
import { ENTITIES } from '../src/entities.js';
import { provisionDatabase } from './database.js';
import { seedTasks } from './seed.js';
import { cpuSeconds } from './servers.js';

const { values: args } = parseArgs({
  options: { n: { type: 'string', default: '4000' }, rounds: { type: 'string', default: '3' }, tasks: { type: 'string', default: '2000' } },
});
const N = Number(args.n);
const ROUNDS = Number(args.rounds);

type Kind = 'em.findOne' | "qb.execute('all', true)" | 'em.execute' | 'query()';

/** One statement of each kind, reading task `id`; each checks it got the row. */
function statements(orm: MikroORM): Record<Kind, (id: string) => Promise<void>> {
  const expectRow = (found: unknown, id: string) => {
    if (!found) throw new Error(`task ${id} not found`);
  };
  return {
    'em.findOne': async (id) => expectRow(await orm.em.fork().findOne(Task, id), id),
    "qb.execute('all', true)": async (id) =>
      expectRow((await orm.em.fork().createQueryBuilder(Task).select('*').where({ id }).execute('all', true))[0], id),
    'em.execute': async (id) => expectRow((await orm.em.fork().execute('select * from task where id = ?', [id]))[0], id),
    'query()': async (id) => expectRow((await query(orm.em.fork(), sql`select * from task where id = ${id}`))[0], id),
  };
}

/** The CPU seconds of every backend serving `applicationName`, or undefined when one cannot be read. */
async function backendCpu(admin: pg.Client, applicationName: string): Promise<number | undefined> {
  const { rows } = await admin.query<{ pid: number }>('select pid from pg_stat_activity where application_name = $1', [applicationName]);
  let total = 0;
  for (const { pid } of rows) {
    const seconds = cpuSeconds(pid);
    if (seconds === undefined) return undefined;
    total += seconds;
  }
  return rows.length > 0 ? total : undefined;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const log = pino({ level: 'warn' });
const database = await provisionDatabase({ keep: false, existing: undefined, log: (line) => console.error(line) });
const applicationName = `tt-bench-statements-${randomBytes(3).toString('hex')}`;
const admin = new pg.Client({ connectionString: database.url });
let orm: MikroORM | undefined;
try {
  const config = loadConfig({ DATABASE_URL: database.url, DB_POOL_MIN: '1', DB_POOL_MAX: '2', DB_APPLICATION_NAME: applicationName });
  const guard = new DatabaseGuard({ log });
  orm = await createOrm(ormOptions({ database: config.database, entities: ENTITIES, clientUrl: database.url, log, operations: new OperationRegistry(), guard }));
  await migrate(orm, log);
  await admin.connect();
  const { taskIds } = await seedTasks(admin, { tasks: Number(args.tasks), seed: 42 });
  const kinds = statements(orm);
  const names = Object.keys(kinds) as Kind[];
  const samples = new Map<Kind, { node: number[]; backend: number[]; wall: number[] }>(names.map((k) => [k, { node: [], backend: [], wall: [] }]));
  let next = 0;
  const nextId = () => taskIds[next++ % taskIds.length]!;
  // Warm-up: JIT, prepared statements, the pool.
  for (const name of names) for (let i = 0; i < 500; i++) await kinds[name](nextId());
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of names) {
      const run = kinds[name];
      const backend0 = await backendCpu(admin, applicationName);
      const [cpu0, wall0] = [process.cpuUsage(), performance.now()];
      for (let i = 0; i < N; i++) await run(nextId());
      const cpu = process.cpuUsage(cpu0);
      const wall = performance.now() - wall0;
      const backend1 = await backendCpu(admin, applicationName);
      const s = samples.get(name)!;
      s.node.push(((cpu.user + cpu.system) / N));
      s.wall.push((wall * 1000) / N);
      if (backend0 !== undefined && backend1 !== undefined) s.backend.push(((backend1 - backend0) * 1e6) / N);
    }
  }
  console.log(`${database.description}; ${N} statements per kind per round, ${ROUNDS} rounds, medians (µs per statement)`);
  console.log('| statement | Node CPU µs | PostgreSQL backend CPU µs | wall µs |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const name of names) {
    const s = samples.get(name)!;
    const backend = s.backend.length === ROUNDS ? median(s.backend).toFixed(0) : 'n/a';
    console.log(`| ${name} | ${median(s.node).toFixed(0)} | ${backend} | ${median(s.wall).toFixed(0)} |`);
  }
} finally {
  await orm?.close(true);
  await admin.end().catch(() => undefined);
  await database.release();
}
