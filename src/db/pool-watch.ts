/**
 * Watching the connection pool: DEBUG lines for every acquire and release, and a WARN line for a connection
 * checked out longer than DB_LEAK_WARNING_MS, naming the operations old enough to hold it.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from '../logger.js';
import type { OperationRegistry } from '../lifecycle/operations.js';

/** The part of tarn's pool (knex's pool) we listen to. */
interface TarnEvents {
  on(event: 'acquireSuccess', listener: (eventId: number, resource: object) => void): void;
  on(event: 'release', listener: (resource: object) => void): void;
  on(event: 'createSuccess' | 'destroySuccess', listener: (eventId: number, resource: object) => void): void;
}

/**
 * Starts watching the ORM's pool; returns a function that stops the watch.
 *
 * @param leakWarningMs how long a checkout may last before it is reported (once per checkout).
 */
export function watchPool(orm: MikroORM, log: Logger, operations: OperationRegistry, leakWarningMs: number): () => void {
  const pool = (orm.em.getConnection().getKnex().client as { pool?: TarnEvents }).pool;
  if (!pool) return () => undefined;
  const poolLog = log.child({ component: 'pool' });
  const checkedOut = new Map<object, { since: number; reported: boolean }>();
  pool.on('acquireSuccess', (_id, resource) => {
    checkedOut.set(resource, { since: Date.now(), reported: false });
    poolLog.debug({ inUse: checkedOut.size }, 'pool connection acquired');
  });
  pool.on('release', (resource) => {
    const held = checkedOut.get(resource);
    checkedOut.delete(resource);
    poolLog.debug({ inUse: checkedOut.size, heldMs: held ? Date.now() - held.since : undefined }, 'pool connection released');
  });
  pool.on('createSuccess', () => poolLog.debug('pool connection opened'));
  pool.on('destroySuccess', () => poolLog.debug('pool connection closed'));

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
  return () => clearInterval(timer);
}
