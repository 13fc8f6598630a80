/**
 * Transactions for the services: one `em.transactional` per mutation on the operation's fork, retried a bounded
 * number of times when PostgreSQL aborts it for a serialization failure or a deadlock (the transaction rolled back,
 * so running it again cannot apply the change twice), and watched: one held longer than DB_LEAK_WARNING_MS is
 * logged at WARN with its operation and request id. Behind PgBouncer (transaction pooling) each transaction starts
 * by setting its own `statement_timeout` with transaction scope: a connection's startup parameters and session
 * settings are not available there (a session `SET` would stay on the server connection and leak to other clients).
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from '../logger.js';
import type { OperationRegistry } from '../lifecycle/operations.js';
import { sqlStateOf } from './errors.js';
import { backoffDelay } from './orm.js';
import { PREPARATION_FAILURES } from './driver.js';

/**
 * SQLSTATEs after which the whole transaction may simply run again: a serialization failure, a deadlock, and a
 * prepared statement that failed to prepare (src/db/driver.ts PREPARATION_FAILURES: its text then runs unnamed).
 */
const RETRYABLE = new Set(['40001', '40P01', ...PREPARATION_FAILURES]);

export interface TransactionRunnerOptions {
  log: Logger;
  operations: OperationRegistry;
  leakWarningMs: number;
  /** Attempts in all, the first included. */
  maxAttempts?: number;
  /**
   * When set (PgBouncer mode), every transaction first runs `set_config('statement_timeout', ms, true)`, the
   * parameterised `SET LOCAL`: the timeout lasts until its commit or rollback. 0 means none, as in the config.
   */
  localStatementTimeoutMs?: number;
}

export class TransactionRunner {
  constructor(private readonly options: TransactionRunnerOptions) {}

  /**
   * Runs `work` in `em.transactional` on the operation's fork `em`, with the retries and the watch above. `work`
   * gets the transaction's EntityManager (a fork with an empty identity map); what it persisted is flushed before
   * COMMIT.
   */
  async run<T>(em: EntityManager, work: (tx: EntityManager) => Promise<T>): Promise<T> {
    const { log, operations, leakWarningMs, maxAttempts = 3, localStatementTimeoutMs: localTimeout } = this.options;
    const context = em.getLoggerContext<{ opKey?: number; requestId?: string }>();
    for (let attempt = 1; ; attempt++) {
      const started = Date.now();
      const watch = setTimeout(() => {
        const op = context.opKey !== undefined ? operations.get(context.opKey) : undefined;
        log.warn(
          { requestId: context.requestId, operation: op?.name, heldMs: Date.now() - started },
          'transaction held longer than DB_LEAK_WARNING_MS: a possible leak',
        );
      }, leakWarningMs);
      watch.unref();
      try {
        return await em.transactional(
          async (tx) => {
            if (localTimeout !== undefined) await tx.execute(`select set_config('statement_timeout', ?, true)`, [String(localTimeout)]);
            return work(tx);
          },
          { clear: true },
        );
      } catch (err) {
        const state = sqlStateOf(err) ?? sqlStateOf((err as { cause?: unknown }).cause);
        if (attempt >= maxAttempts || !state || !RETRYABLE.has(state)) throw err;
        log.warn({ requestId: context.requestId, attempt, sqlState: state }, 'transaction aborted by PostgreSQL (serialization failure or deadlock): running it again');
        await new Promise((r) => setTimeout(r, 10 + backoffDelay(attempt, 20, 200)));
      } finally {
        clearTimeout(watch);
      }
    }
  }
}
