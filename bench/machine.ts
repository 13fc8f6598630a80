/**
 * How busy the machine was with other work during a run. The box is shared (other test suites, builds), and a
 * ratio is only fair when both sides ran on the same quiet machine; so every measured run records the CPU used
 * by processes that are not part of the benchmark (not the servers, not the harness, not a PostgreSQL backend of
 * the bench database). Linux only; elsewhere it reports nothing.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpuSeconds } from './servers.js';

/** Total busy CPU seconds of the machine (all cores), from /proc/stat. */
function machineBusySeconds(): number | undefined {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
    // user nice system idle iowait irq softirq steal: busy is everything but idle and iowait.
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = cpu;
    return (user + nice + system + irq + softirq + steal) / 100;
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of each of the benchmark's own processes: `pids`, and PostgreSQL backends serving `database`
 * (`backend` true).
 */
function ownSeconds(pids: readonly number[], database: string): Map<number, { seconds: number; backend: boolean }> {
  const own = new Map<number, { seconds: number; backend: boolean }>();
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return own;
  }
  for (const entry of entries) {
    const pid = Number(entry);
    const listed = pids.includes(pid);
    let backend = false;
    if (!listed) {
      try {
        // A backend's title is "postgres: <user> <database> <client> <state>"; autovacuum names it too.
        backend = readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(database);
      } catch {
        continue; // exited meanwhile
      }
    }
    const seconds = listed || backend ? cpuSeconds(pid) : undefined;
    if (seconds !== undefined) own.set(pid, { seconds, backend });
  }
  return own;
}

/** What {@link watchForeignLoad} found over its interval, in % of one core. */
export interface MachineLoad {
  /** Processes that are neither the benchmark's nor the bench database's backends. */
  foreignPct: number;
  /** The bench database's PostgreSQL backends: the database side of the server under test. */
  databasePct: number;
}

/** Starts watching; `stop()` returns the CPU of other work and of the bench database's backends over the interval. */
export function watchForeignLoad(pids: readonly number[], database: string): () => MachineLoad | undefined {
  const started = Date.now();
  const busy0 = machineBusySeconds();
  const own0 = ownSeconds(pids, database);
  return () => {
    const busy1 = machineBusySeconds();
    if (busy0 === undefined || busy1 === undefined) return undefined;
    // Processes alive at the end: their CPU since the start (all of it if they started meanwhile). One of ours
    // that exited meanwhile (a pooled backend closed when idle) is lost, and its last seconds count as foreign.
    let own = 0;
    let backends = 0;
    for (const [pid, { seconds, backend }] of ownSeconds(pids, database)) {
      const used = seconds - (own0.get(pid)?.seconds ?? 0);
      own += used;
      if (backend) backends += used;
    }
    const wall = (Date.now() - started) / 1000;
    return { foreignPct: Math.max(0, (100 * (busy1 - busy0 - own)) / wall), databasePct: (100 * backends) / wall };
  };
}
