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

export interface OpResult {
  op: OpName;
  description: string;
  /** One measurement per repeat. */
  ours: Measurement[];
  baseline: Measurement[];
  /** Q1 and Q2 at half of the same server's maximum rate. */
  oursHalf: Measurement[];
  baselineHalf: Measurement[];
  sql: { ours?: SqlCount; baseline?: SqlCount };
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

/** The summary row of one operation: medians of each column; ratio = median ours / median baseline req/s. */
export function summarize(r: OpResult) {
  const ours = med(r.ours, 'rps');
  const base = med(r.baseline, 'rps');
  return {
    op: r.op,
    oursRps: ours,
    baselineRps: base,
    ratio: ours !== undefined && base ? ours / base : undefined,
    oursP50: med(r.ours, 'p50'),
    oursP99: med(r.ours, 'p99'),
    baselineP50: med(r.baseline, 'p50'),
    baselineP99: med(r.baseline, 'p99'),
    errors: sum(r.ours) + sum(r.baseline) + sum(r.oursHalf) + sum(r.baselineHalf),
    oursSql: r.sql.ours?.perRequest,
    baselineSql: r.sql.baseline?.perRequest,
    oursRss: med(r.ours, 'rssMb'),
    baselineRss: med(r.baseline, 'rssMb'),
    oursHalfRate: med(r.oursHalf, 'rate'),
    oursHalfP99: med(r.oursHalf, 'p99'),
    baselineHalfRate: med(r.baselineHalf, 'rate'),
    baselineHalfP99: med(r.baselineHalf, 'p99'),
    oursCpu: med(r.ours, 'cpuPct'),
    baselineCpu: med(r.baseline, 'cpuPct'),
    oursGenCpu: med(r.ours, 'loadGenCpuPct'),
    baselineGenCpu: med(r.baseline, 'loadGenCpuPct'),
    foreignCpu: Math.max(...[...r.ours, ...r.baseline].map((m) => m.foreignCpuPct ?? 0)),
    // CPU time per request: cost independent of how much CPU the other processes left over.
    oursCpuMsPerReq: cpuMs(r.ours, 'cpuPct'),
    baselineCpuMsPerReq: cpuMs(r.baseline, 'cpuPct'),
    // PostgreSQL's side of each request: the statements' cost, which the servers' own CPU does not show.
    oursDbCpuMsPerReq: cpuMs(r.ours, 'databaseCpuPct'),
    baselineDbCpuMsPerReq: cpuMs(r.baseline, 'databaseCpuPct'),
  };
}

/** Median over repeats of CPU milliseconds per completed request (the server's, or its database backends'). */
function cpuMs(ms: readonly Measurement[], key: 'cpuPct' | 'databaseCpuPct'): number | undefined {
  return median(ms.flatMap((m) => {
    const pct = m[key];
    return pct !== undefined && m.rps > 0 ? [(10 * pct) / m.rps] : [];
  }));
}

const HEAD = ['op', 'ours req/s', 'baseline req/s', 'ratio', 'ours p50 ms', 'ours p99 ms', 'base p50 ms', 'base p99 ms', 'errors', 'SQL/op ours', 'SQL/op base', 'RSS ours MB', 'RSS base MB'];

function rows(report: BenchReport): string[][] {
  return report.operations.map((r) => {
    const s = summarize(r);
    return [s.op, fmt(s.oursRps), fmt(s.baselineRps), fmt(s.ratio, 2), fmt(s.oursP50, 1), fmt(s.oursP99, 1), fmt(s.baselineP50, 1),
      fmt(s.baselineP99, 1), String(s.errors), fmt(s.oursSql, 1), fmt(s.baselineSql, 1), fmt(s.oursRss), fmt(s.baselineRss)];
  });
}

function halfRows(report: BenchReport): string[][] {
  return report.operations
    .filter((r) => r.oursHalf.length || r.baselineHalf.length)
    .map((r) => {
      const s = summarize(r);
      return [r.op, fmt(s.oursHalfRate), fmt(s.oursHalfP99, 1), fmt(s.baselineHalfRate), fmt(s.baselineHalfP99, 1)];
    });
}
const HALF_HEAD = ['op', 'ours rate req/s', 'ours p99 ms', 'baseline rate req/s', 'baseline p99 ms'];

function cpuRows(report: BenchReport): string[][] {
  return report.operations.map((r) => {
    const s = summarize(r);
    const costRatio = s.oursCpuMsPerReq && s.baselineCpuMsPerReq ? s.baselineCpuMsPerReq / s.oursCpuMsPerReq : undefined;
    return [r.op, fmt(s.oursCpu), fmt(s.oursCpuMsPerReq, 2), fmt(s.oursDbCpuMsPerReq, 2), fmt(s.oursGenCpu), fmt(s.baselineCpu), fmt(s.baselineCpuMsPerReq, 2),
      fmt(s.baselineDbCpuMsPerReq, 2), fmt(s.baselineGenCpu), fmt(costRatio, 2), fmt(s.foreignCpu)];
  });
}
const CPU_HEAD = ['op', 'ours CPU %', 'ours CPU ms/req', 'ours PG ms/req', 'loadgen %', 'base CPU %', 'base CPU ms/req', 'base PG ms/req', 'loadgen %',
  'base/ours CPU per req', 'max other work %'];

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
  const out = [textTable(HEAD, rows(report))];
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
      : `Load: autocannon, ${s.connections} connections, ${s.warmup} s warm-up + ${s.duration} s measured per operation and server, ${s.repeat} repeat(s) (medians shown); pool ${s.poolMax} connections on both sides.`,
    '',
  ];
  if (report.operations.length) {
    out.push(markdownTable(HEAD, rows(report)), '');
    const half = halfRows(report);
    if (half.length) out.push('Latency at half of the maximum rate (evenly spaced arrivals, bench/paced.ts):', '', markdownTable(HALF_HEAD, half), '');
    out.push(`CPU during the measured runs (% of one core; ${report.machine.cpus} cores shared by both servers, PostgreSQL and the load generator):`, '', markdownTable(CPU_HEAD, cpuRows(report)), '');
    out.push('SQL statements per request (BEGIN/COMMIT included):', '');
    for (const r of report.operations) out.push(`- ${r.op} (${r.description}): ours ${r.sql.ours?.detail ?? '-'}, baseline ${r.sql.baseline?.detail ?? '-'}`);
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
