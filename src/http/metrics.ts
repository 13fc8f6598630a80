/**
 * Prometheus metrics (prom-client), one registry per app.
 */
import { Registry } from 'prom-client';
import type { PoolStats } from '../db/pool.js';

/** Where the metrics read live state from. */
export interface MetricsSources {
  pool(): PoolStats;
  breakerState(): 'closed' | 'half-open' | 'open';
  appState(): 'booting' | 'ready' | 'draining' | 'stopped';
}

/** What a finished GraphQL operation reports (see `OperationReport` in src/app.ts). */
export interface OperationObservation {
  name: string;
  type: string;
  durationMs: number;
  sqlStatements: number;
  errorCodes: string[];
}

export interface Metrics {
  readonly registry: Registry;
  observeOperation(op: OperationObservation): void;
  /** One SQL statement's round trip, in ms. */
  observeQuery(tookMs: number): void;
  /** One health ping (`select 1`) round trip, in ms. */
  observePing(ms: number): void;
  /** The exposition text and its content type. */
  render(): Promise<{ contentType: string; body: string }>;
}

/** Builds the app's metrics. */
export function createMetrics(_sources: MetricsSources): Metrics {
  const registry = new Registry();
  return {
    registry,
    observeOperation: () => undefined,
    observeQuery: () => undefined,
    observePing: () => undefined,
    render: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
  };
}
