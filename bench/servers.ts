/**
 * The servers under test, each in its own child process (so its memory is its own, and the load generator in
 * this process does not share its event loop): ours (`npm run build`, then `node dist/src/main.js` in production
 * mode, as `npm run start:prod` runs it), the raw baseline (bench/baseline/, compiled the same way) and PostGraphile
 * (bench/postgraphile/server.ts, compiled the same way). All run compiled JavaScript on the harness's Node, so none
 * pays for tsx at run time (its `keepNames` helper on every closure made, its require hook) nor gets out of paying
 * for it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
// Our server logs its URL only at INFO and the benchmark runs it at WARN, so the harness picks the port.
import { freePort } from '../src/net.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface ChildServer {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  /** When the process was spawned (ms since the epoch): where its --cpu-prof profile starts. */
  readonly spawnedAt: number;
  /** Every stdout line so far (our server logs JSON lines). */
  readonly lines: string[];
  stop(): Promise<void>;
}

/** Where the baseline's build goes (bench/baseline/tsconfig.build.json). */
const BASELINE_DIST = path.join(ROOT, 'bench', 'results', 'baseline-dist');
/** Where PostGraphile's server's build goes (bench/postgraphile/tsconfig.build.json). */
const POSTGRAPHILE_DIST = path.join(ROOT, 'bench', 'results', 'postgraphile-dist');

/**
 * Builds the servers from the sources as they are now: ours with `npm run build` (to dist/), the baseline to
 * bench/results/baseline-dist/, PostGraphile's server to bench/results/postgraphile-dist/. A stale build would
 * measure old code, so every benchmark run builds.
 */
export function buildServers(log: (line: string) => void): void {
  log('building our server (npm run build), the baseline and the PostGraphile server ...');
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  for (const [dist, project] of [[BASELINE_DIST, 'bench/baseline/tsconfig.build.json'], [POSTGRAPHILE_DIST, 'bench/postgraphile/tsconfig.build.json']] as const) {
    rmSync(dist, { recursive: true, force: true });
    execFileSync(process.execPath, [tsc, '-p', project], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  }
}

/** Resident set size of a process in MB (VmRSS from /proc), or undefined where there is no /proc. */
export function rssMb(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Math.round(Number(match[1]) / 102.4) / 10 : undefined;
  } catch {
    return undefined;
  }
}

/** Clock ticks per second of /proc/<pid>/stat's CPU times. */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system) a process has used so far, or undefined where there is no /proc. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // The fields after the command name (which may hold spaces) start at ") "; utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

async function waitReady(url: string, child: ChildProcess, output: () => string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with code ${child.exitCode} before it was ready:\n${output()}`);
    try {
      if ((await fetch(`${url}/readyz`)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`server at ${url} not ready after ${timeoutMs} ms:\n${output()}`);
}

async function startChild(name: string, args: string[], env: Record<string, string>, port: number): Promise<ChildServer> {
  const spawnedAt = Date.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let tail = '';
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts.filter((l) => l.trim()));
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  const output = () => [...lines.slice(-20), tail].join('\n');
  try {
    await waitReady(url, child, output);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    name,
    url,
    pid: child.pid as number,
    spawnedAt,
    lines,
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM'); // our server drains and exits 0 (and writes its --cpu-prof profile)
      });
      return stopping;
    },
  };
}

export interface OurServerOptions {
  databaseUrl: string;
  logLevel: 'warn' | 'debug';
  poolMax: number;
  /** Directory for a --cpu-prof profile; none when undefined. */
  cpuProfDir?: string;
  /** Extra Node.js flags (bench --node-flags). */
  nodeFlags?: string[];
}

/**
 * Starts our server's build ({@link buildServers}) in production mode against the bench database; resolves when
 * /readyz answers 200.
 */
export async function startOurServer(o: OurServerOptions): Promise<ChildServer> {
  const port = await freePort();
  const prof = o.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir] : [];
  return startChild('ours', [...prof, ...(o.nodeFlags ?? []), 'dist/src/main.js'], {
    NODE_ENV: 'production',
    LOG_LEVEL: o.logLevel,
    LOG_PRETTY: 'false',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: o.databaseUrl,
    DB_POOL_MAX: String(o.poolMax),
  }, port);
}

/** Starts the raw baseline's build ({@link buildServers}) against the bench database. */
export async function startBaseline(databaseUrl: string, poolMax: number): Promise<ChildServer> {
  const port = await freePort();
  return startChild('baseline', [path.join(BASELINE_DIST, 'server.js')], {
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    DB_POOL_MAX: String(poolMax),
  }, port);
}

/** Starts PostGraphile's server ({@link buildServers}) against the bench database, its pool sized like the others. */
export async function startPostGraphile(databaseUrl: string, poolMax: number): Promise<ChildServer> {
  const port = await freePort();
  return startChild('postgraphile', [path.join(POSTGRAPHILE_DIST, 'server.js')], {
    NODE_ENV: 'production',
    // Grafast's production mode (its default, said explicitly so it does not print a notice about it).
    GRAPHILE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    DB_POOL_MAX: String(poolMax),
  }, port);
}
