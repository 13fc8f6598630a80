/**
 * Read routing across streaming replicas (DATABASE_REPLICA_URLS), one router per app.
 *
 * Where a statement goes is decided by the driver (src/db/driver.ts) from the state of the request it runs in, kept
 * in AsyncLocalStorage so every ORM call and hand-written query of the request sees it without passing it around:
 * - writes, transactions, and every read of a request after it began a transaction or wrote: the primary;
 * - other reads of a GraphQL request: one replica in rotation, the same for the whole request (its reads never go
 *   back in time), chosen among those the monitor (replicas-monitor.ts) reports up;
 * - a request carrying `x-min-lsn` (the position its client's last write committed at) reads only from a replica
 *   that has replayed that far, waiting up to DB_REPLICA_WAIT_MS for one, else from the primary;
 * - work outside any request (boot, migrations, background jobs): the primary, which is never behind.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Logger } from '../logger.js';
import { parseLsn } from './replicas-lsn.js';

/** `up`: in rotation; `lagging`: reachable but further behind than DB_REPLICA_MAX_LAG_MS; `down`: not answering. */
export type ReplicaState = 'up' | 'lagging' | 'down';

/** One replica as `/readyz` and the metrics show it. */
export interface ReplicaStatus {
  /** `host:port/database` of its URL (never the password). */
  name: string;
  state: ReplicaState;
  /** How far its replay trails the primary, in ms (as of the last probe); null before the first probe. */
  lagMs: number | null;
  /** Why it is out of rotation, when it is. */
  reason?: string;
}

/** What one request knows about where it may read. */
export interface RequestRouting {
  /** Set once the request began a transaction or wrote: from then on it reads from the primary. */
  wrote: boolean;
  /** The WAL position a replica must have replayed to serve this request (its `x-min-lsn`). */
  readonly minLsn: bigint | undefined;
  /** The replica index its reads go to, once chosen; `primary` when none qualifies. */
  target: number | 'primary' | undefined;
}

/** Runs one statement on a connection and returns its rows. */
export type RunSql = (text: string) => Promise<Array<Record<string, unknown>>>;

interface Slot {
  readonly name: string;
  state: ReplicaState;
  replayLsn: bigint | undefined;
  lagMs: number | null;
  reason: string | undefined;
  /** A replay-position query in flight, shared by every request waiting for this replica. */
  refreshing: Promise<void> | undefined;
}

export interface ReplicaRouterOptions {
  urls: readonly string[];
  /** DB_REPLICA_WAIT_MS. */
  waitMs: number;
  log: Logger;
}

/** The name a replica is shown under: its address, without credentials. */
export function replicaName(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
}

/** Pause between replay-position polls while a request waits for a replica to catch up. */
const WAIT_POLL_MS = 2;

export class ReplicaRouter {
  private readonly slots: Slot[];
  private readonly requests = new AsyncLocalStorage<RequestRouting>();
  private readonly log: Logger;
  private primary: RunSql | undefined;
  private replicas: RunSql[] = [];
  private turn = 0;

  constructor(private readonly options: ReplicaRouterOptions) {
    this.log = options.log.child({ component: 'replicas' });
    // Out of rotation until the monitor's first probe: boot and migrations read from the primary.
    this.slots = options.urls.map((url) => ({
      name: replicaName(url),
      state: 'down',
      replayLsn: undefined,
      lagMs: null,
      reason: 'not probed yet',
      refreshing: undefined,
    }));
  }

  /** Called by the driver once it has its connections: how to run SQL on the primary and on each replica. */
  bind(primary: RunSql, replicas: RunSql[]): void {
    this.primary = primary;
    this.replicas = replicas;
  }

  /** How many replicas are configured. */
  get size(): number {
    return this.slots.length;
  }

  /** Runs `fn` (a request) with `routing` as its routing state. */
  run<T>(routing: RequestRouting, fn: () => T): T {
    return this.requests.run(routing, fn);
  }

  /**
   * The routing state of a new request. With a `minLsn` that no replica in rotation is known to have replayed,
   * polls their replay positions for up to DB_REPLICA_WAIT_MS; if none gets there, the request reads from the
   * primary.
   */
  async routingFor(minLsn: bigint | undefined): Promise<RequestRouting> {
    const routing: RequestRouting = { wrote: false, minLsn, target: undefined };
    if (minLsn === undefined || this.qualifying(minLsn).length > 0) return routing;
    const deadline = Date.now() + this.options.waitMs;
    // With no replica in rotation there is nothing to wait for.
    while (Date.now() < deadline && this.slots.some((s) => s.state === 'up')) {
      await this.refreshReplayPositions(deadline - Date.now());
      if (this.qualifying(minLsn).length > 0) return routing;
      const left = deadline - Date.now();
      if (left > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(WAIT_POLL_MS, left)));
    }
    routing.target = 'primary';
    return routing;
  }

  /** Where the current read goes: a replica index, or undefined for the primary. Called by the driver. */
  readTarget(): number | undefined {
    const routing = this.requests.getStore();
    if (!routing || routing.wrote || routing.target === 'primary') return undefined;
    if (routing.target === undefined || this.slots[routing.target]?.state !== 'up') {
      // First read of the request, or its replica left the rotation mid-request: choose (again).
      routing.target = this.choose(routing.minLsn) ?? 'primary';
    }
    return routing.target === 'primary' ? undefined : routing.target;
  }

  /** The current request began a transaction or wrote: its later reads must see that, so they go to the primary. */
  noteWrite(): void {
    const routing = this.requests.getStore();
    if (routing) routing.wrote = true;
  }

  /** A read on replica `index` failed at the connection level: out of rotation until a probe finds it healthy. */
  reportFailure(index: number, err: unknown): void {
    this.update(index, { state: 'down', reason: err instanceof Error ? err.message : String(err) });
  }

  /** Records a probe's result (the monitor) or a failure. Logs each change of state once. */
  update(index: number, change: { state: ReplicaState; replayLsn?: bigint; lagMs?: number | null; reason?: string }): void {
    const slot = this.slots[index];
    if (!slot) return;
    const before = slot.state;
    slot.state = change.state;
    if (change.replayLsn !== undefined) slot.replayLsn = change.replayLsn;
    if (change.lagMs !== undefined) slot.lagMs = change.lagMs;
    slot.reason = change.state === 'up' ? undefined : change.reason;
    if (before === slot.state) return;
    const fields = { replica: slot.name, lagMs: slot.lagMs, reason: slot.reason };
    if (slot.state === 'up') this.log.info(fields, 'replica in rotation');
    else if (before === 'up') this.log.warn(fields, `replica taken out of rotation (${slot.state}): its reads go elsewhere`);
    else this.log.info(fields, `replica is ${slot.state}`);
  }

  /** Each replica's state, for `/readyz` and the metrics. */
  status(): ReplicaStatus[] {
    return this.slots.map((s) => ({ name: s.name, state: s.state, lagMs: s.lagMs, ...(s.reason ? { reason: s.reason } : {}) }));
  }

  /** The primary's current WAL position (`pg_current_wal_lsn()`), as text: the `x-min-lsn` of a write. */
  async primaryLsn(): Promise<string> {
    if (!this.primary) throw new Error('the replica router is not bound to a driver');
    const [row] = await this.primary('select pg_current_wal_lsn()::text as lsn');
    return String(row?.lsn);
  }

  /** Runs SQL on the primary (the monitor). */
  onPrimary(text: string): Promise<Array<Record<string, unknown>>> {
    if (!this.primary) return Promise.reject(new Error('the replica router is not bound to a driver'));
    return this.primary(text);
  }

  /** Runs SQL on replica `index` (the monitor). */
  onReplica(index: number, text: string): Promise<Array<Record<string, unknown>>> {
    const run = this.replicas[index];
    return run ? run(text) : Promise.reject(new Error(`no replica ${index}`));
  }

  /** Replicas in rotation that have replayed `minLsn` (all in rotation when there is none). */
  private qualifying(minLsn: bigint | undefined): number[] {
    const found: number[] = [];
    this.slots.forEach((slot, i) => {
      if (slot.state === 'up' && (minLsn === undefined || (slot.replayLsn !== undefined && slot.replayLsn >= minLsn))) found.push(i);
    });
    return found;
  }

  /** The next qualifying replica in turn, or undefined. */
  private choose(minLsn: bigint | undefined): number | undefined {
    const candidates = this.qualifying(minLsn);
    if (candidates.length === 0) return undefined;
    this.turn = (this.turn + 1) % candidates.length;
    return candidates[this.turn];
  }

  /** Asks every replica in rotation for its replay position (one query per replica, shared by all waiters). */
  private async refreshReplayPositions(timeoutMs: number): Promise<void> {
    const queries = this.slots.map((slot, i): Promise<void> => {
      if (slot.state !== 'up') return Promise.resolve();
      slot.refreshing ??= this.onReplica(i, 'select pg_last_wal_replay_lsn()::text as lsn')
        .then(([row]) => {
          const lsn = typeof row?.lsn === 'string' ? parseLsn(row.lsn) : undefined;
          if (lsn !== undefined && (slot.replayLsn === undefined || lsn > slot.replayLsn)) slot.replayLsn = lsn;
        })
        .catch(() => undefined) // the monitor judges health; a failed poll only means no news
        .finally(() => (slot.refreshing = undefined));
      return slot.refreshing;
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(queries), new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, timeoutMs))))]);
    clearTimeout(timer);
  }
}
