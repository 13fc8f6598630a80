/**
 * The report: medians over repeats per operation, printed as a table and written as JSON and Markdown under
 * bench/results/ (`<timestamp>.json`, `<timestamp>.md`, and `latest.md` / `latest.json`).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { OpName } from './options.js';
import type { SqlCount } from './sqlcount.js';
import type { SoakResult } from './soak.js';

export interface Measurement {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** Server RSS in MB at the end of the run. */
  rssMb: number | undefined;
  /** The server's CPU use during the measured run, in % of one core. */
  cpuPct?: number;
  /** The harness's own CPU use (the load generator) during the run, in % of one core. */
  loadGenCpuPct?: number;
  /** The bench database's PostgreSQL backends' CPU during the run, in % of one core. */
  databaseCpuPct?: number;
  /** CPU used by unrelated processes on the machine during the run, in % of one core (noise). */
  foreignCpuPct?: number;
  /** The requested rate for half-rate runs. */
  rate?: number;
  failures: string[];
}

/** The servers a run can measure: ours, the raw baseline and PostGraphile V5. */
export type TargetName = 'ours' | 'baseline' | 'postgraphile';

export interface OpResult {
  op: OpName;
  description: string;
  /** One measurement per repeat. */
  ours: Measurement[];
  baseline: Measurement[];
  postgraphile: Measurement[];
  /** Q1 and Q2 at half of the same server's maximum rate. */
  oursHalf: Measurement[];
  baselineHalf: Measurement[];
  postgraphileHalf: Measurement[];
  sql: Partial<Record<TargetName, SqlCount>>;
  /** Servers this operation was not run on, and why (e.g. PostGraphile has no startTask). */
  notRun?: Partial<Record<TargetName, string>>;
  /** Servers that do less work for this operation than ours, and what they leave out. */
  notes?: Partial<Record<TargetName, string>>;
}

export interface BenchReport {
  startedAt: string;
  finishedAt?: string;
  machine: { cpus: number; cpuModel: string; memoryGb: number; node: string; platform: string };
  postgres: string;
  target: string;
  settings: { tasks: number; seed: number; duration: number; warmup: number; connections: number; repeat: number; poolMax: number };
  dataset?: { tasks: number; withParent: number; dependencyEdges: number; seedSeconds: number };
  operations: OpResult[];
  /** Q2's statements by page size on our server. */
  pageSizeSql?: Record<string, number>;
  soak?: SoakResult;
  /** With --cpu-prof: our server's profile and its summary over the load. */
  profile?: { file: string; summary: string };
  /** Why the run is invalid (errors, mismatches); empty when valid. */
  problems: string[];
}

export function machineInfo(): BenchReport['machine'] {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const med = (ms: readonly Measurement[], key: 'rps' | 'p50' | 'p99' | 'rssMb' | 'rate' | 'cpuPct' | 'loadGenCpuPct' | 'foreignCpuPct' | 'databaseCpuPct') =>
  median(ms.map((m) => m[key]).filter((v): v is number => typeof v === 'number'));
const fmt = (v: number | undefined, digits = 0) => (v === undefined ? '-' : v.toFixed(digits));
const sum = (ms: readonly Measurement[]) => ms.reduce((a, m) => a + m.errors, 0);

/** One server's medians over the repeats of one operation. */
function sideOf(full: readonly Measurement[], half: readonly Measurement[]) {
  return {
    rps: med(full, 'rps'),
    p50: med(full, 'p50'),
    p99: med(full, 'p99'),
    rss: med(full, 'rssMb'),
    cpu: med(full, 'cpuPct'),
    genCpu: med(full, 'loadGenCpuPct'),
    // CPU time per request: cost independent of how much CPU the other processes left over.
    cpuMsPerReq: cpuMs(full, 'cpuPct'),
    // PostgreSQL's side of each request: the statements' cost, which the servers' own CPU does not show.
    dbCpuMsPerReq: cpuMs(full, 'databaseCpuPct'),
    halfRate: med(half, 'rate'),
    halfP99: med(half, 'p99'),
  };
}

/**
 * The summary row of one operation: medians of each column per server; a ratio is median ours req/s over the
 * other server's median req/s.
 */
export function summarize(r: OpResult) {
  const ours = sideOf(r.ours, r.oursHalf);
  const baseline = sideOf(r.baseline, r.baselineHalf);
  const postgraphile = sideOf(r.postgraphile, r.postgraphileHalf);
  const ratio = (other: number | undefined) => (ours.rps !== undefined && other ? ours.rps / other : undefined);
  const all = [...r.ours, ...r.baseline, ...r.postgraphile];
  return {
    op: r.op,
    ours,
    baseline,
    postgraphile,
    ratio: ratio(baseline.rps),
    ratioPostGraphile: ratio(postgraphile.rps),
    errors: sum(all) + sum(r.oursHalf) + sum(r.baselineHalf) + sum(r.postgraphileHalf),
    foreignCpu: Math.max(...all.map((m) => m.foreignCpuPct ?? 0)),
  };
}

/** Median over repeats of CPU milliseconds per completed request (the server's, or its database backends'). */
function cpuMs(ms: readonly Measurement[], key: 'cpuPct' | 'databaseCpuPct'): number | undefined {
  return median(ms.flatMap((m) => {
    const pct = m[key];
    return pct !== undefined && m.rps > 0 ? [(10 * pct) / m.rps] : [];
  }));
}

/** "n/a" for an operation not run on PostGraphile (why: under the tables), "-" for one not measured at all. */
const peer = (r: OpResult, v: number | undefined, digits = 0) => (r.notRun?.postgraphile ? 'n/a' : fmt(v, digits));

const HEAD = ['op', 'ours req/s', 'PostGraphile req/s', 'baseline req/s', 'ours/PostGraphile', 'ours/baseline', 'ours p50 ms', 'ours p99 ms', 'PGL p99 ms',
  'base p99 ms', 'errors', 'SQL/op ours', 'SQL/op PGL', 'SQL/op base', 'RSS ours MB', 'RSS PGL MB', 'RSS base MB'];

function rows(report: BenchReport): string[][] {
  return report.operations.map((r) => {
    const s = summarize(r);
    const sql = (c: SqlCount | undefined) => fmt(c?.perRequest, 1);
    return [s.op, fmt(s.ours.rps), peer(r, s.postgraphile.rps), fmt(s.baseline.rps), peer(r, s.ratioPostGraphile, 2), fmt(s.ratio, 2), fmt(s.ours.p50, 1),
      fmt(s.ours.p99, 1), peer(r, s.postgraphile.p99, 1), fmt(s.baseline.p99, 1), String(s.errors), sql(r.sql.ours),
      r.notRun?.postgraphile ? 'n/a' : sql(r.sql.postgraphile), sql(r.sql.baseline), fmt(s.ours.rss), peer(r, s.postgraphile.rss), fmt(s.baseline.rss)];
  });
}

function halfRows(report: BenchReport): string[][] {
  return report.operations
    .filter((r) => r.oursHalf.length || r.baselineHalf.length || r.postgraphileHalf.length)
    .map((r) => {
      const s = summarize(r);
      return [r.op, fmt(s.ours.halfRate), fmt(s.ours.halfP99, 1), fmt(s.postgraphile.halfRate), fmt(s.postgraphile.halfP99, 1), fmt(s.baseline.halfRate),
        fmt(s.baseline.halfP99, 1)];
    });
}
const HALF_HEAD = ['op', 'ours rate req/s', 'ours p99 ms', 'PGL rate req/s', 'PGL p99 ms', 'baseline rate req/s', 'baseline p99 ms'];

function cpuRows(report: BenchReport): string[][] {
  return report.operations.map((r) => {
    const s = summarize(r);
    const side = (x: ReturnType<typeof sideOf>, shown: (v: number | undefined, digits?: number) => string) =>
      [shown(x.cpu), shown(x.cpuMsPerReq, 2), shown(x.dbCpuMsPerReq, 2), shown(x.genCpu)];
    return [r.op, ...side(s.ours, fmt), ...side(s.postgraphile, (v, d) => peer(r, v, d)), ...side(s.baseline, fmt), fmt(s.foreignCpu)];
  });
}
const CPU_HEAD = ['op', 'ours CPU %', 'ours CPU ms/req', 'ours PG ms/req', 'loadgen %', 'PGL CPU %', 'PGL CPU ms/req', 'PGL PG ms/req', 'loadgen %',
  'base CPU %', 'base CPU ms/req', 'base PG ms/req', 'loadgen %', 'max other work %'];

const SERVER_NAMES: Record<TargetName, string> = { ours: 'ours', baseline: 'the baseline', postgraphile: 'PostGraphile' };

/** Operations not run on some server and why, and what some server leaves out of one: a line each. */
function notRunLines(report: BenchReport): string[] {
  return report.operations.flatMap((r) => [
    ...Object.entries(r.notRun ?? {}).map(([name, why]) => `${r.op} not run on ${SERVER_NAMES[name as TargetName]}: ${why}.`),
    ...Object.entries(r.notes ?? {}).map(([name, what]) => `${r.op} on ${SERVER_NAMES[name as TargetName]}: ${what}.`),
  ]);
}

/** A fixed-width text table for the terminal. */
export function textTable(head: string[], body: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

function markdownTable(head: string[], body: string[][]): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`, ...body.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** The report as the terminal shows it. */
export function renderText(report: BenchReport): string {
  if (report.operations.length === 0) return '';
  const out = [textTable(HEAD, rows(report)), ...notRunLines(report)];
  const half = halfRows(report);
  if (half.length) out.push('', 'Latency at half of the maximum rate (evenly spaced arrivals):', textTable(HALF_HEAD, half));
  out.push('', `CPU during the measured runs (% of one core; the machine has ${report.machine.cpus}):`, textTable(CPU_HEAD, cpuRows(report)));
  if (report.pageSizeSql) out.push('', `Q2 SQL statements by page size (ours): ${JSON.stringify(report.pageSizeSql)}`);
  return out.join('\n');
}

/** The report as Markdown: settings, machine, tables, SQL details, problems. */
export function renderMarkdown(report: BenchReport): string {
  const m = report.machine;
  const s = report.settings;
  const out = [
    `# Benchmark ${report.startedAt}`,
    '',
    `Machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGb} GB, ${m.platform}, Node ${m.node}; ${report.postgres}.`,
    `Target: ${report.target}. Dataset: ${s.tasks} tasks (seed ${s.seed})${report.dataset ? `, ${report.dataset.withParent} with a parent, ${report.dataset.dependencyEdges} dependency edges, seeded in ${report.dataset.seedSeconds.toFixed(1)} s` : ''}.`,
    report.soak
      ? `Load: autocannon, ${s.connections} connections, the 80/20 mix for ${report.soak.seconds} s; pool ${s.poolMax} connections.`
      : `Load: autocannon, ${s.connections} connections, ${s.warmup} s warm-up + ${s.duration} s measured per operation and server, ${s.repeat} repeat(s) (medians shown); pool ${s.poolMax} connections on every server. PGL: PostGraphile V5 (amber preset, pg adaptor) over the same database.`,
    '',
  ];
  if (report.operations.length) {
    out.push(markdownTable(HEAD, rows(report)), '');
    const notRun = notRunLines(report);
    if (notRun.length) out.push(...notRun.map((line) => `- ${line}`), '');
    const half = halfRows(report);
    if (half.length) out.push('Latency at half of the maximum rate (evenly spaced arrivals, bench/paced.ts):', '', markdownTable(HALF_HEAD, half), '');
    out.push(`CPU during the measured runs (% of one core; ${report.machine.cpus} cores shared by the servers, PostgreSQL and the load generator; PG ms/req: the bench database's backends during that server's run):`, '', markdownTable(CPU_HEAD, cpuRows(report)), '');
    out.push('SQL statements per request (BEGIN/COMMIT included):', '');
    for (const r of report.operations) {
      out.push(`- ${r.op} (${r.description}): ours ${r.sql.ours?.detail ?? '-'}, PostGraphile ${r.notRun?.postgraphile ? 'n/a' : (r.sql.postgraphile?.detail ?? '-')}, baseline ${r.sql.baseline?.detail ?? '-'}`);
    }
    if (report.pageSizeSql) out.push(`- Q2 by page size (ours): ${Object.entries(report.pageSizeSql).map(([k, v]) => `${k} → ${v}`).join(', ')}`);
    out.push('');
  }
  if (report.soak) {
    const k = report.soak;
    const shown = k.samples.filter((x, i) => i === 0 || i === k.samples.length - 1 || x.t % k.intervalSeconds === 0);
    out.push(`Soak: 80/20 mix for ${k.seconds} s at ${k.rps.toFixed(0)} req/s, ${k.errors} errors; RSS MB (sampled every second; shown every ${k.intervalSeconds} s): ${shown.map((x) => `${x.rssMb} (${x.t} s)`).join(', ')}.`);
    out.push(`End ${fmt(k.endRssMb)} MB; last half: the floor (lowest RSS within ±25 s) rose ${k.lastHalfGrowthMb.toFixed(1)} MB (${k.slopeMbPerMinute.toFixed(2)} MB/min) → ${k.growing ? 'GROWING' : 'not growing'}; floors every 25 s: ${k.lastHalfFloorsMb.join(', ')} MB; a line through the raw samples: ${k.rawLineGrowthMb.toFixed(1)} MB.`, '');
  }
  if (report.profile) out.push(`CPU profile of our server during the load (\`${report.profile.file}\`):`, '', '```', report.profile.summary, '```', '');
  out.push(report.problems.length ? `**INVALID RUN**:\n\n${report.problems.map((p) => `- ${p.replace(/\n/g, '\n  ')}`).join('\n')}` : 'Valid run: every response checked, no errors.');
  return `${out.join('\n')}\n`;
}

/** Writes `<timestamp>.json`, `<timestamp>.md`, `latest.json` and `latest.md`; returns the Markdown path. */
export async function writeReport(report: BenchReport, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const stamp = report.startedAt.replace(/[:.]/g, '-');
  const json = `${JSON.stringify(report, null, 2)}\n`;
  const md = renderMarkdown(report);
  await Promise.all([
    writeFile(path.join(dir, `${stamp}.json`), json),
    writeFile(path.join(dir, `${stamp}.md`), md),
    writeFile(path.join(dir, 'latest.json'), json),
    writeFile(path.join(dir, 'latest.md'), md),
  ]);
  return path.join(dir, `${stamp}.md`);
}
