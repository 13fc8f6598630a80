/**
 * The replica monitor: probes every replica in a loop (reachable? how far behind?) and tells the router, which takes
 * a replica out of rotation while it is down or lags past DB_REPLICA_MAX_LAG_MS and puts it back once healthy.
 *
 * Lag is measured in time, from WAL positions: each round samples the primary's `pg_current_wal_lsn()`; a replica
 * whose replay position is below a sample taken at time t is missing changes that existed at t, so it lags at least
 * `now - t` (at the resolution of the probe interval). Unlike `now() - pg_last_xact_replay_timestamp()`, this does
 * not grow while the primary is simply idle.
 */
import type { Logger } from '../logger.js';
import { parseLsn } from './replicas-lsn.js';
import type { ReplicaRouter } from './replicas.js';

export interface ReplicaMonitorOptions {
  /** DB_REPLICA_MAX_LAG_MS. */
  maxLagMs: number;
  log: Logger;
}

/** Probe interval: a quarter of the lag bound (so a lagging replica leaves within about 1.25x it), 50 ms to 1 s. */
export function probeIntervalMs(maxLagMs: number): number {
  return Math.max(50, Math.min(1000, Math.floor(maxLagMs / 4)));
}

/** A probe that has not answered by then counts as down (a frozen host must not hold its reads). */
export function probeTimeoutMs(maxLagMs: number): number {
  return Math.max(1000, Math.min(5000, maxLagMs));
}

const PROBE_SQL = `select (case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end)::text as lsn`;

interface Sample {
  at: number;
  lsn: bigint;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class ReplicaMonitor {
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private samples: Sample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly router: ReplicaRouter,
    private readonly options: ReplicaMonitorOptions,
  ) {
    this.intervalMs = probeIntervalMs(options.maxLagMs);
    this.timeoutMs = probeTimeoutMs(options.maxLagMs);
  }

  /** Starts probing (the first round at once). */
  start(): void {
    this.options.log.info({ replicas: this.router.size, intervalMs: this.intervalMs, maxLagMs: this.options.maxLagMs }, 'replica monitor started');
    this.loop();
  }

  /** Stops probing and waits for a round in flight, so nothing uses the replica pools once they are closed. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.round;
  }

  private loop(): void {
    if (this.stopped) return;
    this.round = this.probeAll().finally(() => {
      this.round = undefined;
      if (this.stopped) return;
      this.timer = setTimeout(() => this.loop(), this.intervalMs);
      this.timer.unref();
    });
  }

  /** One round: sample the primary, then probe every replica in parallel. */
  private async probeAll(): Promise<void> {
    const started = Date.now();
    try {
      const [row] = await withTimeout(this.router.onPrimary('select pg_current_wal_lsn()::text as lsn'), this.timeoutMs, 'the primary');
      const lsn = typeof row?.lsn === 'string' ? parseLsn(row.lsn) : undefined;
      if (lsn !== undefined) this.samples.push({ at: started, lsn });
    } catch {
      // The primary is the breaker's business; without a fresh sample, lag is judged on the older ones.
    }
    // Keep enough history to see a lag past the bound; always keep the newest sample.
    const horizon = started - 2 * this.options.maxLagMs - this.intervalMs;
    while (this.samples.length > 1 && (this.samples[0]?.at ?? started) < horizon) this.samples.shift();
    await Promise.all(Array.from({ length: this.router.size }, (_, i) => this.probe(i)));
  }

  private async probe(index: number): Promise<void> {
    try {
      const [row] = await withTimeout(this.router.onReplica(index, PROBE_SQL), this.timeoutMs, 'the replica');
      const replayLsn = typeof row?.lsn === 'string' ? parseLsn(row.lsn) : undefined;
      if (replayLsn === undefined) {
        this.router.update(index, { state: 'down', lagMs: null, reason: 'no replay position yet' });
        return;
      }
      const lagMs = this.lagOf(replayLsn);
      const lagging = lagMs !== null && lagMs > this.options.maxLagMs;
      this.router.update(index, {
        state: lagging ? 'lagging' : 'up',
        replayLsn,
        lagMs,
        reason: lagging ? `replay is ${lagMs} ms behind the primary (DB_REPLICA_MAX_LAG_MS ${this.options.maxLagMs})` : undefined,
      });
    } catch (err) {
      if (this.stopped) return;
      this.router.update(index, { state: 'down', reason: err instanceof Error ? err.message : String(err) });
    }
  }

  /** Age of the oldest primary position the replica has not replayed; 0 when caught up; null without samples. */
  private lagOf(replayLsn: bigint): number | null {
    if (this.samples.length === 0) return null;
    const missing = this.samples.find((s) => s.lsn > replayLsn);
    return missing ? Date.now() - missing.at : 0;
  }
}
