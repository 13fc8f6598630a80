/**
 * Watching the connection pool: DEBUG lines for every acquire and release, and a WARN line for a connection
 * checked out longer than DB_LEAK_WARNING_MS, naming the operations old enough to hold it.
 */
import type { Pool } from 'pg';
import type { Logger } from '../logger.js';
import type { OperationRegistry } from '../lifecycle/operations.js';

/**
 * Starts watching `pool` (the primary's pg pool) through its events; returns a function that stops the watch.
 *
 * @param leakWarningMs how long a checkout may last before it is reported (once per checkout).
 */
export function watchPool(pool: Pool, log: Logger, operations: OperationRegistry, leakWarningMs: number): () => void {
  const poolLog = log.child({ component: 'pool' });
  const checkedOut = new Map<object, { since: number; reported: boolean }>();
  const onAcquire = (client: object) => {
    checkedOut.set(client, { since: Date.now(), reported: false });
    poolLog.debug({ inUse: checkedOut.size }, 'pool connection acquired');
  };
  const onRelease = (_err: Error | undefined, client: object) => {
    const held = checkedOut.get(client);
    checkedOut.delete(client);
    poolLog.debug({ inUse: checkedOut.size, heldMs: held ? Date.now() - held.since : undefined }, 'pool connection released');
  };
  const onConnect = () => poolLog.debug('pool connection opened');
  const onRemove = (client: object) => {
    // A connection that broke while checked out is removed without a release.
    checkedOut.delete(client);
    poolLog.debug('pool connection closed');
  };
  pool.on('acquire', onAcquire);
  pool.on('release', onRelease);
  pool.on('connect', onConnect);
  pool.on('remove', onRemove);

  const timer = setInterval(
    () => {
      const now = Date.now();
      for (const entry of checkedOut.values()) {
        const heldMs = now - entry.since;
        if (entry.reported || heldMs < leakWarningMs) continue;
        entry.reported = true;
        const suspects = operations.snapshot(now).filter((op) => op.ageMs >= heldMs - 50);
        poolLog.warn({ heldMs, suspects }, 'connection held longer than DB_LEAK_WARNING_MS: a possible leak');
      }
    },
    Math.min(1000, Math.max(50, Math.floor(leakWarningMs / 4))),
  );
  timer.unref();
  return () => {
    clearInterval(timer);
    pool.off('acquire', onAcquire).off('release', onRelease).off('connect', onConnect).off('remove', onRemove);
  };
}
