/**
 * The measurements: every operation on every server, warm-up first, then the measured run, then the server's
 * RSS. The order of the servers turns from one repeat to the next, so slow drift (autovacuum, a busy neighbour)
 * does not always favour the same one. Q1 and Q2 are then run again at half of the rate each server reached, with
 * evenly spaced arrivals (bench/paced.ts), for the latency target. An operation a server cannot express (M2 on
 * PostGraphile) is not run on it, and the report says why.
 */
import type { BenchOptions, OpName } from './options.js';
import { runLoad } from './load.js';
import type { Dialect, ReadFixtures, ReadName } from './operations.js';
import { runPaced } from './paced.js';
import type { Prepared } from './prepare.js';
import type { Measurement, OpResult, TargetName } from './report.js';
import { createPendingPool, resetDataset } from './seed.js';
import { cpuSeconds, rssMb } from './servers.js';
import { watchForeignLoad } from './machine.js';
import { DESCRIPTIONS, requestsFor, type Fixtures } from './workloads.js';

export interface Target {
  name: TargetName;
  url: string;
  pid: number | undefined;
  /** Its deep cursor is its own (PostGraphile's cursors are not ours). */
  fixtures: ReadFixtures;
  /** How its schema spells the operations. */
  dialect: Dialect;
  /** Operations it cannot express, and why: not run on it. */
  notRun?: Partial<Record<OpName, string>>;
  /** Operations it does less work for than ours, and what it leaves out (reported beside the numbers). */
  notes?: Partial<Record<OpName, string>>;
}

/** Rows in an M2 pool per expected request per second (2 requests per task, generous margin). */
const POOL_MARGIN = 1.5;

const HALF_RATE_OPS: readonly OpName[] = ['Q1', 'Q2'];
const WRITES: readonly OpName[] = ['M1', 'M2', 'MIX'];
const isRead = (op: OpName): op is ReadName => op === 'Q1' || op === 'Q2' || op === 'Q3' || op === 'Q4';

export class Measurer {
  readonly problems: string[] = [];
  /** The last M1 rate per server: M2's pool of fresh tasks is sized from it. */
  private readonly m1Rps = new Map<string, number>();
  /** When the per-operation runs began (after the initial warm-up): where a CPU profile's summary starts. */
  measuringSince: number | undefined;
  /** Processes of the benchmark (servers, this harness), not counted as foreign load. */
  private pids: number[] = [process.pid];

  constructor(
    private readonly o: BenchOptions,
    private readonly prepared: Prepared,
    private readonly log: (line: string) => void,
  ) {}

  /** Fixtures for one run; M2 gets a pool of fresh PENDING tasks, sized to outlast warm-up and measurement. */
  private async fixturesFor(op: OpName, t: Target): Promise<{ fixtures: Fixtures; exhausted: () => boolean }> {
    let ids: string[] = [];
    if (op === 'M2') {
      const expected = this.m1Rps.get(t.name) ?? 1500;
      const count = Math.max(2000, Math.ceil(expected * (this.o.warmup + this.o.duration) * POOL_MARGIN));
      ids = await createPendingPool(this.prepared.pool, count, `bench ${t.name} M2`);
    }
    let next = 0;
    return {
      fixtures: { ...t.fixtures, nextPoolTask: () => ids[next++] },
      exhausted: () => op === 'M2' && next > ids.length,
    };
  }

  /** One warm-up plus one measured run of `op` on `t` (at `rate` req/s when given). */
  async run(op: OpName, t: Target, rate?: number): Promise<Measurement> {
    const { fixtures, exhausted } = await this.fixturesFor(op, t);
    const counter = { n: 0 };
    const load = (duration: number) =>
      rate === undefined || !isRead(op)
        ? runLoad({ url: t.url, requests: requestsFor(op, fixtures, counter, t.dialect), connections: this.o.connections, duration })
        : runPaced({ url: t.url, body: () => t.dialect.readBody(op, fixtures, counter.n++), rate, duration, warmup: this.o.warmup, connections: this.o.connections });
    const label = `${op}${rate ? ` @${rate}/s` : ''} ${t.name}`;
    // A paced run warms up inside runPaced, on the sockets it then measures on.
    if (this.o.warmup > 0 && rate === undefined) {
      const warm = await load(this.o.warmup);
      if (warm.errors) this.problems.push(`${label} warm-up: ${warm.errors} errors; ${warm.failures.join(' | ')}`);
    }
    const foreign = watchForeignLoad(this.pids, new URL(this.prepared.db.url).pathname.slice(1));
    const [cpu0, gen0, wall0] = [cpuSeconds(t.pid), process.cpuUsage(), Date.now()];
    const run = await load(this.o.duration);
    const wall = (Date.now() - wall0) / 1000;
    const cpu1 = cpuSeconds(t.pid);
    const gen = process.cpuUsage(gen0);
    const machine = foreign();
    const m: Measurement = {
      rps: run.rps,
      p50: run.p50,
      p99: run.p99,
      errors: run.errors,
      rssMb: rssMb(t.pid),
      cpuPct: cpu0 !== undefined && cpu1 !== undefined ? (100 * (cpu1 - cpu0)) / wall : undefined,
      loadGenCpuPct: (100 * (gen.user + gen.system)) / 1e6 / wall,
      foreignCpuPct: machine?.foreignPct,
      databaseCpuPct: machine?.databasePct,
      failures: run.failures,
      rate,
    };
    if (run.errors) this.problems.push(`${label}: ${run.errors} errors; ${run.failures.join(' | ')}`);
    if (exhausted()) this.problems.push(`${label}: the pool of fresh tasks ran out (M2 ran much faster than M1): rerun`);
    if (op === 'M1') this.m1Rps.set(t.name, run.rps);
    if (WRITES.includes(op)) await this.reset();
    this.log(
      `  ${label.padEnd(20)} ${run.rps.toFixed(0).padStart(6)} req/s  p50 ${run.p50.toFixed(1)} ms  p99 ${run.p99.toFixed(1)} ms` +
        `  errors ${run.errors}  rss ${m.rssMb ?? '?'} MB  cpu ${m.cpuPct?.toFixed(0) ?? '?'}% (PostgreSQL ${m.databaseCpuPct?.toFixed(0) ?? '?'}%, load generator ${m.loadGenCpuPct?.toFixed(0)}%, other work ${m.foreignCpuPct?.toFixed(0) ?? '?'}%)`,
    );
    return m;
  }

  /** Back to the dataset as seeded (see {@link resetDataset}). */
  private async reset(): Promise<void> {
    const started = Date.now();
    const removed = await resetDataset(this.prepared.pool);
    this.log(`  (removed ${removed} benchmark-made tasks and vacuumed in ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }

  /** Every operation on every target, `repeat` times. */
  async all(targets: Target[], sql: (op: OpName) => OpResult['sql']): Promise<OpResult[]> {
    this.pids = [process.pid, ...targets.flatMap((t) => (t.pid === undefined ? [] : [t.pid]))];
    const results = new Map<OpName, OpResult>(
      this.o.ops.map((op) => {
        const byTarget = (of: (t: Target) => string | undefined) => Object.fromEntries(targets.flatMap((t) => (of(t) ? [[t.name, of(t)]] : [])));
        const [notRun, notes] = [byTarget((t) => t.notRun?.[op]), byTarget((t) => t.notes?.[op])];
        const result: OpResult = { op, description: DESCRIPTIONS[op], ours: [], baseline: [], postgraphile: [], oursHalf: [], baselineHalf: [], postgraphileHalf: [], sql: sql(op) };
        return [op, { ...result, ...(Object.keys(notRun).length ? { notRun } : {}), ...(Object.keys(notes).length ? { notes } : {}) }];
      }),
    );
    // A freshly started server is still loading code and compiling hot paths: whatever is measured first would
    // pay for it. The mix touches every benchmarked path, so it warms them all before anything counts.
    if (this.o.warmup > 0) {
      for (const t of targets) {
        const seconds = Math.max(5, 2 * this.o.warmup);
        const { fixtures } = await this.fixturesFor('MIX', t);
        const warm = await runLoad({ url: t.url, requests: requestsFor('MIX', fixtures, { n: 0 }, t.dialect), connections: this.o.connections, duration: seconds });
        this.log(`  warmed ${t.name} up with the mix for ${seconds} s (${warm.rps.toFixed(0)} req/s)`);
        if (warm.errors) this.problems.push(`warm-up mix on ${t.name}: ${warm.errors} errors; ${warm.failures.join(' | ')}`);
      }
    }
    await this.reset();
    this.measuringSince = Date.now();
    for (let r = 0; r < this.o.repeat; r++) {
      this.log(`repeat ${r + 1} of ${this.o.repeat}`);
      // Each server goes first in turn.
      const order = targets.map((_, i) => targets[(i + r) % targets.length] as Target);
      for (const op of this.o.ops) {
        const result = results.get(op) as OpResult;
        const runs = order.filter((t) => !t.notRun?.[op]);
        for (const t of runs) result[t.name].push(await this.run(op, t));
        if (!this.o.halfRate || !HALF_RATE_OPS.includes(op)) continue;
        for (const t of runs) {
          const max = result[t.name].at(-1)?.rps ?? 0;
          const half = Math.max(1, Math.round(max / 2));
          result[`${t.name}Half`].push(await this.run(op, t, half));
        }
      }
    }
    return [...results.values()];
  }
}
