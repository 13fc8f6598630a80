/**
 * Connection pool statistics, read from the primary's pg pool (`pg.Pool`, which MikroORM's
 * `PostgreSqlConnection.getNativeClient()` hands out) at the moment they are asked for.
 */
import type { Pool } from 'pg';

export interface PoolStats {
  size: number;
  used: number;
  free: number;
  pending: number;
  max: number;
}

/**
 * Current pool statistics; zeros before the pool exists. `size` counts the connections open or opening, `used`
 * those checked out, `pending` the requests waiting for one.
 */
export function poolStats(pool: Pool | undefined, max: number): PoolStats {
  if (!pool) return { size: 0, used: 0, free: 0, pending: 0, max };
  const size = pool.totalCount;
  const free = pool.idleCount;
  return { size, used: size - free, free, pending: pool.waitingCount, max };
}
