/**
 * The per-operation context: a fresh EntityManager fork, fresh loaders and services on it, the request id and a
 * logger that stamps it on every line. Nothing here outlives the operation.
 */
import type DataLoader from 'dataloader';
import type { FastifyBaseLogger } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Operation } from '../lifecycle/operations.js';
import { createTaskLoaders, type TaskLoaders } from '../tasks/task.loaders.js';
import { TaskService } from '../tasks/task.service.js';
import { StatusService } from '../tasks/status.service.js';
import { DependencyService } from '../tasks/dependency.service.js';
import { RemovalService } from '../tasks/removal.service.js';
import type { HealthService } from '../http/health.service.js';
import type { TransactionRunner } from '../db/transaction.js';
import type { Principal } from '../auth/authenticator.js';

/** What every operation's context shares with the app. */
export interface AppServices {
  health: HealthService;
  transactions: TransactionRunner;
}

export interface GraphQLContext {
  readonly requestId: string;
  /** The request's logger: every line carries the request id. */
  readonly log: FastifyBaseLogger;
  readonly operation: Operation;
  /** Who acts: recorded as `actor` on events (the token's subject, or `anonymous` without authentication). */
  readonly actor: string;
  /** The verified caller, when authentication is on. */
  readonly principal: Principal | undefined;
  /** Whose rate-limit bucket this operation draws from. */
  readonly rateKey: string;
  readonly em: EntityManager;
  readonly loaders: TaskLoaders;
  readonly tasks: TaskService;
  readonly status: StatusService;
  readonly dependencies: DependencyService;
  readonly removal: RemovalService;
  readonly health: HealthService;
  /**
   * A loader built on demand and shared by the whole operation, memoized under `key` (which must encode every
   * argument the loader's batch function depends on, such as a connection's page arguments).
   */
  loader<K, V>(key: string, create: () => DataLoader<K, V>): DataLoader<K, V>;
  /**
   * Called after each successful mutation: drops every loader's cache (the task loaders and the memoized ones), so
   * the mutation's own nested fields and the mutations after it in the same request read the data it wrote.
   */
  mutated(): void;
}

/**
 * Builds one operation's context. The fork holds no connection; only its transactions and queries borrow one.
 *
 * @param root the ORM's root EntityManager (never used directly: `allowGlobalContext` is off).
 */
export function createContext(
  root: EntityManager,
  operation: Operation,
  log: FastifyBaseLogger,
  { health, transactions }: AppServices,
  caller: { principal: Principal | undefined; rateKey: string },
): GraphQLContext {
  const em = root.fork({ loggerContext: { opKey: operation.key, requestId: operation.requestId } });
  const loaders = createTaskLoaders(em);
  const actor = caller.principal?.subject ?? 'anonymous';
  const memo = new Map<string, DataLoader<unknown, unknown>>();
  return {
    requestId: operation.requestId,
    log,
    operation,
    actor,
    principal: caller.principal,
    rateKey: caller.rateKey,
    em,
    loaders,
    tasks: new TaskService(em, loaders, actor, transactions, caller.principal !== undefined),
    status: new StatusService(em, actor, transactions),
    dependencies: new DependencyService(em, actor, transactions),
    removal: new RemovalService(em, actor, transactions),
    health,
    loader<K, V>(key: string, create: () => DataLoader<K, V>): DataLoader<K, V> {
      let found = memo.get(key) as DataLoader<K, V> | undefined;
      if (!found) {
        found = create();
        memo.set(key, found);
      }
      return found;
    },
    mutated() {
      loaders.clearAll();
      memo.clear();
    },
  };
}
