/**
 * The database guard: a circuit breaker (cockatiel) around every statement and transaction start.
 *
 * After `failures` consecutive connection-level failures it opens: statements and transactions then fail at once
 * with SERVICE_UNAVAILABLE, without waiting on the pool. After `halfOpenAfterMs` one call is let through as a
 * probe; its success closes the breaker. While open, a background probe (`select 1` on a fresh connection) runs
 * every `halfOpenAfterMs`, so the breaker closes soon after the database answers even with no traffic.
 */
import { CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen, type CircuitBreakerPolicy } from 'cockatiel';
import type { Logger } from '../logger.js';
import { isConnectionError, isPoolExhausted } from './errors.js';

export type BreakerState = 'closed' | 'half-open' | 'open';

/** Pool exhaustion is our own queue being full, not the database failing: it must not open the breaker. */
function isDatabaseFailure(err: unknown): boolean {
  return !isPoolExhausted(err) && isConnectionError(err);
}

export interface GuardOptions {
  log: Logger;
  /** Consecutive connection failures that open the breaker. */
  failures?: number;
  /** How long the breaker stays open before a probe may close it. */
  halfOpenAfterMs?: number;
}

export class DatabaseGuard {
  private readonly breaker: CircuitBreakerPolicy;
  private probeTimer: NodeJS.Timeout | undefined;
  private probe: (() => Promise<unknown>) | undefined;
  private readonly halfOpenAfterMs: number;

  constructor({ log, failures = 5, halfOpenAfterMs = 1000 }: GuardOptions) {
    this.halfOpenAfterMs = halfOpenAfterMs;
    this.breaker = circuitBreaker(handleWhen(isDatabaseFailure), { halfOpenAfter: halfOpenAfterMs, breaker: new ConsecutiveBreaker(failures) });
    this.breaker.onBreak((reason) => {
      const error = 'error' in reason ? (reason.error) : undefined;
      log.error({ err: error }, `circuit breaker opened after ${failures} consecutive database connection failures: failing fast`);
      this.scheduleProbe();
    });
    this.breaker.onReset(() => log.info('circuit breaker closed: the database answers again'));
  }

  /** Runs a database call through the breaker. Throws BrokenCircuitError while open. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    return this.breaker.execute(fn);
  }

  state(): BreakerState {
    switch (this.breaker.state) {
      case CircuitState.Closed:
        return 'closed';
      case CircuitState.HalfOpen:
        return 'half-open';
      default:
        return 'open';
    }
  }

  /** Sets the background probe (a cheap statement) used while the breaker is open. */
  setProbe(probe: () => Promise<unknown>): void {
    this.probe = probe;
  }

  private scheduleProbe(): void {
    if (this.probeTimer || !this.probe) return;
    const probe = this.probe;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      void this.run(probe).catch(() => undefined).finally(() => {
        if (this.state() !== 'closed') this.scheduleProbe();
      });
    }, this.halfOpenAfterMs + 10);
    this.probeTimer.unref();
  }

  /** Stops the background probe (at shutdown). */
  stop(): void {
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    this.probe = undefined;
  }
}
