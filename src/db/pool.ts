/**
 * Connection pool statistics, read from knex's tarn pool. The pool object is replaced on reconnect, so it is
 * looked up on every read.
 */
import type { MikroORM } from '@mikro-orm/postgresql';

export interface PoolStats {
  size: number;
  used: number;
  free: number;
  pending: number;
  max: number;
}

interface TarnPool {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
  numPendingCreates(): number;
}

/** Current pool statistics; zeros when the pool is closed. */
export function poolStats(orm: MikroORM | undefined, max: number): PoolStats {
  // knex keeps its tarn pool on `client.pool`, which its public types do not expose.
  const pool = (orm?.em.getConnection().getKnex().client as { pool?: TarnPool } | undefined)?.pool;
  if (!pool) return { size: 0, used: 0, free: 0, pending: 0, max };
  const used = pool.numUsed();
  const free = pool.numFree();
  return { size: used + free, used, free, pending: pool.numPendingAcquires(), max };
}
