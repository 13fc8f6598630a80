/**
 * Command-line options of `npm run bench` (see bench/README.md). Every option has a default that makes the
 * command alone a complete run.
 */
import { parseArgs } from 'node:util';

export const ALL_OPS = ['Q1', 'Q2', 'Q3', 'Q4', 'M1', 'M2', 'MIX'] as const;
export type OpName = (typeof ALL_OPS)[number];

export interface BenchOptions {
  /** Seeded tasks (`--tasks`, or BENCH_TASKS; default 100,000). */
  tasks: number;
  /** PRNG seed of the dataset (default 42). */
  seed: number;
  /** Measured seconds per operation and server (default 10). */
  duration: number;
  /** Unmeasured warm-up seconds before each measurement (default 3). */
  warmup: number;
  /** Concurrent HTTP connections (default 16: enough to saturate 2 cores without drowning them). */
  connections: number;
  /** Runs of every measurement; the report shows medians (default 1). */
  repeat: number;
  ops: OpName[];
  /** Use this existing database (seeded here when it has no tasks) instead of creating a fresh one. */
  database: string | undefined;
  /** Benchmark this GraphQL server instead of starting ours (it should serve the same database: see --database). */
  targetUrl: string | undefined;
  /** With --target-url: its process id, to sample its RSS. */
  targetPid: number | undefined;
  baseline: boolean;
  /** Also start PostGraphile V5 over the same database and measure it as a peer (bench/postgraphile/). */
  postgraphile: boolean;
  /** Also measure Q1 and Q2 latency at half of each server's maximum rate. */
  halfRate: boolean;
  /** Seconds of the 80/20 mix for the memory check instead of the benchmark (0: off). */
  soak: number;
  /** Seconds between logged RSS samples during a soak (RSS is sampled every second; default 10). */
  soakInterval: number;
  /** Run our server with --cpu-prof; the profile lands in bench/results/profiles. */
  cpuProf: boolean;
  /** Extra Node.js flags for our server (e.g. V8 GC flags to try), space-separated. */
  nodeFlags: string[];
  /** DB_POOL_MAX of our server and pool size of the baseline (default 10, the server's default). */
  poolMax: number;
  /** Keep the bench database (and the embedded PostgreSQL's directory) after the run. */
  keep: boolean;
  outDir: string;
}

const HELP = `npm run bench -- [options]
  --tasks N           tasks to seed (default 100000, or BENCH_TASKS)
  --seed N            dataset PRNG seed (default 42)
  --duration S        measured seconds per operation and server (default 10)
  --warmup S          warm-up seconds before each measurement (default 3)
  --connections N     concurrent connections (default 16)
  --repeat N          repeat every measurement N times, report medians (default 1)
  --ops LIST          comma-separated subset of ${ALL_OPS.join(',')}
  --database URL      use this existing database (seeded if it has no tasks; kept) instead of a fresh one
  --target-url URL    benchmark this GraphQL server instead of starting ours (serving the --database)
  --target-pid PID    with --target-url: sample this process's RSS
  --no-baseline       skip the raw baseline
  --no-postgraphile   skip PostGraphile V5 (the peer started over the same database)
  --no-half-rate      skip the Q1/Q2 latency runs at half the maximum rate
  --soak S            run the 80/20 mix for S seconds sampling RSS (memory check) instead of the benchmark
  --soak-interval S   seconds between logged RSS samples in a soak (sampled every second; default 10)
  --cpu-prof          run our server with --cpu-prof (profile in bench/results/profiles)
  --node-flags=F      extra Node.js flags for our server, e.g. --node-flags="--max-semi-space-size=32"
  --pool N            DB_POOL_MAX of both servers (default 10)
  --keep              keep the bench database afterwards
  --out DIR           results directory (default bench/results)`;

function positive(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} expects a number >= ${min} (got ${JSON.stringify(value)})\n\n${HELP}`);
  return n;
}

/** Parses `argv` (without node and the script); prints help and exits on --help. */
export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      tasks: { type: 'string' },
      seed: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      repeat: { type: 'string' },
      ops: { type: 'string' },
      database: { type: 'string' },
      'target-url': { type: 'string' },
      'target-pid': { type: 'string' },
      'no-baseline': { type: 'boolean' },
      'no-postgraphile': { type: 'boolean' },
      'no-half-rate': { type: 'boolean' },
      soak: { type: 'string' },
      'soak-interval': { type: 'string' },
      'cpu-prof': { type: 'boolean' },
      'node-flags': { type: 'string' },
      pool: { type: 'string' },
      keep: { type: 'boolean' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    process.exit(0);
  }
  const ops = (values.ops ?? ALL_OPS.join(',')).split(',').map((o) => o.trim().toUpperCase());
  const unknown = ops.filter((o) => !(ALL_OPS as readonly string[]).includes(o));
  if (unknown.length) throw new Error(`--ops: unknown operation(s) ${unknown.join(', ')}; choose from ${ALL_OPS.join(', ')}`);
  return {
    tasks: Math.floor(positive('tasks', values.tasks ?? env.BENCH_TASKS, 100_000, 100)),
    seed: Math.floor(positive('seed', values.seed, 42, 0)),
    duration: positive('duration', values.duration, 10),
    warmup: positive('warmup', values.warmup, 3, 0),
    connections: Math.floor(positive('connections', values.connections, 16)),
    repeat: Math.floor(positive('repeat', values.repeat, 1)),
    ops: ops as OpName[],
    database: values.database,
    targetUrl: values['target-url']?.replace(/\/+$/, ''),
    targetPid: values['target-pid'] ? Math.floor(positive('target-pid', values['target-pid'], 0)) : undefined,
    baseline: !values['no-baseline'],
    postgraphile: !values['no-postgraphile'],
    halfRate: !values['no-half-rate'],
    soak: positive('soak', values.soak, 0, 0),
    soakInterval: positive('soak-interval', values['soak-interval'], 10),
    cpuProf: values['cpu-prof'] ?? false,
    nodeFlags: (values['node-flags'] ?? '').split(/\s+/).filter(Boolean),
    poolMax: Math.floor(positive('pool', values.pool, 10, 2)),
    keep: values.keep ?? false,
    outDir: values.out ?? 'bench/results',
  };
}
