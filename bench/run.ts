/**
 * `npm run bench`: one command from a fresh clone. It creates a database (an embedded PostgreSQL, or a new
 * database on DATABASE_URL's server), seeds a deterministic dataset, counts our SQL per operation, starts our
 * server (production mode), the raw baseline and PostGraphile V5 side by side, checks the baseline answers the
 * same bytes and PostGraphile the same data, then drives each operation on each with autocannon and writes the
 * report under bench/results/. See bench/README.md.
 *
 * Exit code: 0 for a valid run; 1 when any response failed, the servers disagree, or anything else went wrong.
 */
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { Cleanup } from './cleanup.js';
import { comparePostGraphile, compareServers } from './compare.js';
import { Measurer, type Target } from './measure.js';
import { parseOptions, type BenchOptions, type OpName } from './options.js';
import { deepRows, OUR_DIALECT, walkDeepCursor } from './operations.js';
import { POSTGRAPHILE_DIALECT, POSTGRAPHILE_NOT_RUN, POSTGRAPHILE_NOTES } from './postgraphile/operations.js';
import { prepare, type Prepared } from './prepare.js';
import { summarizeProfile } from './profile.js';
import { machineInfo, renderText, writeReport, type BenchReport, type TargetName } from './report.js';
import { createPendingPool, resetDataset } from './seed.js';
import { headerCounter, sqlPerOperation, totalCounter, type SqlCount } from './sqlcount.js';
import { buildServers, ROOT, startBaseline, startOurServer, startPostGraphile, type ChildServer } from './servers.js';
import { soak } from './soak.js';
import { requestsFor } from './workloads.js';

const log = (line: string) => process.stdout.write(`${line}\n`);

/** Starts what is measured: our server (or the given URL), the baseline and PostGraphile. */
async function startTargets(o: BenchOptions, p: Prepared, cleanup: Cleanup, profDir: string | undefined) {
  let ours: ChildServer | undefined;
  let target: Target;
  if (o.targetUrl) {
    log(`target: ${o.targetUrl} (walking its own deep cursor)`);
    const deepCursor = await walkDeepCursor(o.targetUrl, deepRows(p.fixtures.taskIds.length));
    target = { name: 'ours', url: o.targetUrl, pid: o.targetPid, fixtures: { ...p.fixtures, deepCursor }, dialect: OUR_DIALECT };
  } else {
    const flags = [...(profDir ? ['--cpu-prof'] : []), ...o.nodeFlags].join(' ');
    log(`starting our server (NODE_ENV=production, LOG_LEVEL=warn, DB_POOL_MAX=${o.poolMax}${flags ? `, ${flags}` : ''}) ...`);
    ours = await startOurServer({ databaseUrl: p.db.url, logLevel: 'warn', poolMax: o.poolMax, cpuProfDir: profDir, nodeFlags: o.nodeFlags });
    cleanup.add(() => ours?.stop() ?? Promise.resolve());
    target = { name: 'ours', url: ours.url, pid: ours.pid, fixtures: p.fixtures, dialect: OUR_DIALECT };
  }
  let baseline: Target | undefined;
  if (o.baseline && !o.soak) {
    log('starting the raw baseline ...');
    const b = await startBaseline(p.db.url, o.poolMax);
    cleanup.add(() => b.stop());
    baseline = { name: 'baseline', url: b.url, pid: b.pid, fixtures: p.fixtures, dialect: OUR_DIALECT };
  }
  let postgraphile: Target | undefined;
  if (o.postgraphile && !o.soak) {
    log('starting PostGraphile V5 (amber preset, pg adaptor) and walking its own deep cursor ...');
    const g = await startPostGraphile(p.db.url, o.poolMax);
    cleanup.add(() => g.stop());
    // Ours was walked on the dataset as seeded; the SQL counts have created tasks since, at the head of the order.
    await resetDataset(p.pool);
    const deepCursor = await POSTGRAPHILE_DIALECT.walkDeepCursor(g.url, deepRows(p.fixtures.taskIds.length));
    postgraphile = { name: 'postgraphile', url: g.url, pid: g.pid, fixtures: { ...p.fixtures, deepCursor }, dialect: POSTGRAPHILE_DIALECT, notRun: POSTGRAPHILE_NOT_RUN, notes: POSTGRAPHILE_NOTES };
  }
  return { ours, target, baseline, postgraphile };
}

async function main(o: BenchOptions, cleanup: Cleanup): Promise<number> {
  const report: BenchReport = {
    startedAt: new Date().toISOString(),
    machine: machineInfo(),
    postgres: '',
    target: o.targetUrl ?? 'our server (npm run build, then node dist/src/main.js, NODE_ENV=production)',
    settings: { tasks: o.tasks, seed: o.seed, duration: o.duration, warmup: o.warmup, connections: o.connections, repeat: o.repeat, poolMax: o.poolMax },
    operations: [],
    problems: [],
  };
  buildServers(log);
  const p = await prepare(o, cleanup, log);
  report.postgres = p.db.description;
  report.dataset = p.dataset;
  report.pageSizeSql = p.pageSizeSql;
  const outDir = path.resolve(ROOT, o.outDir);
  const profDir = o.cpuProf && !o.targetUrl ? path.join(outDir, 'profiles') : undefined;
  if (profDir) await mkdir(profDir, { recursive: true });
  const { ours, target, baseline, postgraphile } = await startTargets(o, p, cleanup, profDir);

  const spare = await createPendingPool(p.pool, 20, 'bench compare');
  const poolTask = () => spare.pop() ?? '';
  let sqlBaseline: Partial<Record<OpName, SqlCount>> = {};
  let sqlPostGraphile: Partial<Record<OpName, SqlCount>> = {};
  if (baseline) {
    log('checking that ours and the baseline answer the same bytes ...');
    report.problems.push(...(await compareServers(target.url, baseline.url, o.ops, p.fixtures, poolTask)));
  }
  if (postgraphile) {
    log('checking that PostGraphile answers the same data as ours ...');
    report.problems.push(...(await comparePostGraphile(target.url, postgraphile.url, o.ops, target.fixtures, postgraphile.fixtures)));
  }
  if (report.problems.length) {
    log(`the servers disagree:\n${report.problems.join('\n')}`);
    await writeReport(report, outDir);
    return 1;
  }
  if (baseline) sqlBaseline = await sqlPerOperation(headerCounter(baseline.url), o.ops, p.fixtures, poolTask);
  if (postgraphile) sqlPostGraphile = await sqlPerOperation(totalCounter(postgraphile.url), o.ops, postgraphile.fixtures, poolTask, POSTGRAPHILE_DIALECT);

  let measuredFrom = Date.now();
  if (o.soak) {
    log(`soak: the 80/20 mix for ${o.soak} s on ${target.url}, RSS every ${o.soakInterval} s ...`);
    const requests = requestsFor('MIX', { ...target.fixtures, nextPoolTask: () => undefined }, { n: 0 });
    report.soak = await soak({ url: target.url, pid: target.pid, requests, connections: o.connections, seconds: o.soak, intervalSeconds: o.soakInterval, log });
    if (report.soak.errors) report.problems.push(`soak: ${report.soak.errors} errors; ${report.soak.failures.join(' | ')}`);
  } else {
    const measurer = new Measurer(o, p, log);
    const targets = [target, baseline, postgraphile].filter((t): t is Target => t !== undefined);
    const sql = (op: OpName): Partial<Record<TargetName, SqlCount>> => ({ ours: p.sqlOurs[op], baseline: sqlBaseline[op], postgraphile: sqlPostGraphile[op] });
    report.operations = await measurer.all(targets, sql);
    measuredFrom = measurer.measuringSince ?? measuredFrom;
    report.problems.push(...measurer.problems);
  }
  report.finishedAt = new Date().toISOString();

  log('');
  log(renderText(report));
  if (report.soak) {
    const k = report.soak;
    log(`\nsoak: end RSS ${k.endRssMb} MB; last half: floor ${k.lastHalfGrowthMb.toFixed(1)} MB → ${k.growing ? 'GROWING' : 'not growing'} (floors every 25 s: ${k.lastHalfFloorsMb.join(', ')} MB; raw line ${k.rawLineGrowthMb.toFixed(1)} MB)`);
  }
  if (ours && profDir) {
    await ours.stop(); // the profile is written when the process exits
    // One profile per thread: the main thread's (thread id 0) is the server's.
    const main = (await readdir(profDir)).find((f) => f.includes(`.${ours.pid}.0.`) && f.endsWith('.cpuprofile'));
    if (main) {
      const skip = (measuredFrom - ours.spawnedAt) / 1000;
      report.profile = { file: path.join(profDir, main), summary: await summarizeProfile(path.join(profDir, main), 25, skip) };
      log(`\nCPU profile of our server during the load (${report.profile.file}):\n${report.profile.summary}`);
    }
  }
  const file = await writeReport(report, outDir);
  log(`\nreport: ${path.relative(process.cwd(), file)} (and ${path.relative(process.cwd(), path.join(outDir, 'latest.md'))})`);
  if (report.problems.length) log(`\nINVALID RUN:\n${report.problems.join('\n')}`);
  return report.problems.length ? 1 : 0;
}

const cleanup = new Cleanup();
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`\n${signal}: stopping servers and removing the bench database ...`);
    void cleanup.run().then(() => process.exit(130));
  });
}
let code = 1;
try {
  code = await main(parseOptions(process.argv.slice(2)), cleanup);
} catch (err) {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
} finally {
  await cleanup.run();
}
process.exit(code);
