/**
 * Database health: one timed round trip, plus pool statistics. Serves the `health` query and `/readyz`.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import type { PoolStats } from '../db/pool.js';

export interface Health {
  status: 'ok' | 'degraded';
  database: boolean;
  responseTimeMs: number;
  pool: PoolStats;
}

export class HealthService {
  constructor(
    private readonly orm: () => MikroORM | undefined,
    private readonly pool: () => PoolStats,
    private readonly onPing: (ms: number) => void = () => undefined,
  ) {}

  /** Pings PostgreSQL once (`select 1`) and reports how long it took. */
  async check(): Promise<Health> {
    const orm = this.orm();
    const started = performance.now();
    let database = false;
    if (orm) {
      try {
        await orm.em.getConnection().execute('select 1');
        database = true;
      } catch {
        database = false;
      }
    }
    const responseTimeMs = Math.round((performance.now() - started) * 1000) / 1000;
    if (database) this.onPing(responseTimeMs);
    return { status: database ? 'ok' : 'degraded', database, responseTimeMs, pool: this.pool() };
  }
}
