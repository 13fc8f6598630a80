/**
 * Everything before the first measurement: the database, the migrations (our server runs them at boot), the
 * dataset, the deep cursor Q4 starts after, and our SQL statements per operation (counted on a short-lived copy
 * of our server at LOG_LEVEL=debug, which is stopped before anything is timed).
 */
import pg from 'pg';
import type { Cleanup } from './cleanup.js';
import { provisionDatabase, type BenchDatabase } from './database.js';
import type { BenchOptions, OpName } from './options.js';
import { deepRows, walkDeepCursor, type ReadFixtures } from './operations.js';
import type { BenchReport } from './report.js';
import { ASSIGNEES, createPendingPool, resetDataset, SEED_ANCHOR, seedTasks } from './seed.js';
import { logCounter, pageSizeCheck, sqlPerOperation, type SqlCount } from './sqlcount.js';
import { startOurServer } from './servers.js';

export interface Prepared {
  db: BenchDatabase;
  /** The harness's own connections (pools of fresh tasks for M2). */
  pool: pg.Pool;
  dataset: BenchReport['dataset'];
  /** Fixtures whose cursor is in our server's format (valid for ours and the baseline). */
  fixtures: ReadFixtures;
  sqlOurs: Partial<Record<OpName, SqlCount>>;
  pageSizeSql: Record<string, number> | undefined;
}

/** Seeds an empty database, or reads the ids of the dataset a reused database already holds. */
async function dataset(o: BenchOptions, pool: pg.Pool, log: (line: string) => void): Promise<{ taskIds: string[]; info: BenchReport['dataset'] }> {
  const { rows } = await pool.query<{ n: number }>('select count(*)::int as n from task');
  if ((rows[0]?.n ?? 0) === 0) {
    log(`seeding ${o.tasks} tasks (seed ${o.seed}) ...`);
    const started = Date.now();
    const seeded = await seedTasks(pool, { tasks: o.tasks, seed: o.seed });
    const seedSeconds = (Date.now() - started) / 1000;
    log(`  seeded in ${seedSeconds.toFixed(1)} s: ${seeded.withParent} with a parent, ${seeded.dependencyEdges} dependency edges (VACUUM ANALYZEd)`);
    return { taskIds: seeded.taskIds, info: { tasks: o.tasks, withParent: seeded.withParent, dependencyEdges: seeded.dependencyEdges, seedSeconds } };
  }
  // A reused database: back to the dataset as seeded (a run that was interrupted leaves its writes), so every
  // server's deep cursor is walked on the same rows. The seeded tasks are those dated before the anchor.
  await resetDataset(pool);
  const seeded = await pool.query<{ id: string }>(
    `select id from task where created_at < $1 and created_by <> 'bench-pool' order by created_at, id`,
    [new Date(SEED_ANCHOR)],
  );
  log(`reusing the database: ${rows[0]?.n} tasks, ${seeded.rows.length} of them seeded (benchmark-made ones removed)`);
  return { taskIds: seeded.rows.map((r) => r.id), info: undefined };
}

export async function prepare(o: BenchOptions, cleanup: Cleanup, log: (line: string) => void): Promise<Prepared> {
  const db = await provisionDatabase({ keep: o.keep, existing: o.database, log });
  cleanup.add(() => db.release());
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  cleanup.add(() => pool.end());

  log('starting our server once at LOG_LEVEL=debug (migrations, SQL counts) ...');
  const debug = await startOurServer({ databaseUrl: db.url, logLevel: 'debug', poolMax: o.poolMax });
  cleanup.add(() => debug.stop());
  try {
    const data = await dataset(o, pool, log);
    const fixtures: ReadFixtures = { taskIds: data.taskIds, assignees: ASSIGNEES, deepCursor: await walkDeepCursor(debug.url, deepRows(data.taskIds.length)) };
    let sqlOurs: Partial<Record<OpName, SqlCount>> = {};
    let pageSizeSql: Record<string, number> | undefined;
    if (!o.targetUrl) {
      log('counting SQL statements per operation ...');
      const spare = await createPendingPool(pool, 10, 'bench sql count');
      const counter = logCounter(debug);
      sqlOurs = await sqlPerOperation(counter, o.ops, fixtures, () => spare.pop() ?? '');
      pageSizeSql = o.ops.includes('Q2') ? await pageSizeCheck(counter) : undefined;
    }
    return { db, pool, dataset: data.info, fixtures, sqlOurs, pageSizeSql };
  } finally {
    await debug.stop();
  }
}
