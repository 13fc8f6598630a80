/**
 * The per-operation context: the operation's EntityManager fork (every read and write of the operation goes through
 * it), fresh loaders and services on that fork, the request id and a logger that stamps it on every line. Nothing
 * here outlives the operation.
 */
import type DataLoader from 'dataloader';
import type { FastifyBaseLogger } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Operation } from '../lifecycle/operations.js';
import { createTaskLoaders, type TaskLoaders } from '../tasks/task.loaders.js';
import { TaskService } from '../tasks/task.service.js';
import { StatusService } from '../tasks/status.service.js';
import { DependencyService } from '../dependencies/dependency.service.js';
import { RemovalService } from '../tasks/removal.service.js';
import type { HealthService } from '../http/health.service.js';
import type { TransactionRunner } from '../db/transaction.js';
import type { Principal } from '../auth/authenticator.js';
import type { WebhookConfig } from '../config.js';
import type { DocumentNode, GraphQLSchema } from 'graphql';
import { taskModel, type TaskColumns } from '../tasks/task.model.js';
import { taskColumnsFor, taskFieldsOf } from './task-fields.js';

/** What every operation's context shares with the app. */
export interface AppServices {
  health: HealthService;
  transactions: TransactionRunner;
  webhooks: WebhookSettings;
}

/** What the webhook service needs from the app. */
export interface WebhookSettings {
  readonly config: WebhookConfig;
  /** Tells this instance's delivery worker that webhooks or deliveries changed (it looks for work at once). */
  changed(): void;
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
  /** The operation's fork: its reads run on it, and its mutations' transactions are forks of it. */
  readonly em: EntityManager;
  /** The task columns the operation's reads need, once its document is known (undefined: every column). */
  readonly taskColumns: TaskColumns | undefined;
  /** Tells the context the operation's document (before it executes), so task reads take only the columns it needs. */
  useDocument(schema: GraphQLSchema, document: DocumentNode): void;
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

/** One operation's context. The services are made when first asked for. */
class OperationContext implements GraphQLContext {
  readonly requestId: string;
  readonly actor: string;
  readonly principal: Principal | undefined;
  readonly rateKey: string;
  readonly em: EntityManager;
  readonly loaders: TaskLoaders;
  readonly health: HealthService;
  private readonly transactions: TransactionRunner;
  private readonly loggerContext: { opKey: number; requestId: string };
  private readonly memo = new Map<string, DataLoader<unknown, unknown>>();
  /**
   * The document's columns, in an object of its own: Apollo hands resolvers a shallow copy of the context, so a
   * field set on the copy would not reach the loaders made here.
   */
  private readonly document: { columns?: TaskColumns } = {};
  private lazy: { tasks?: TaskService; status?: StatusService; dependencies?: DependencyService; removal?: RemovalService } = {};

  constructor(
    root: EntityManager,
    readonly operation: Operation,
    readonly log: FastifyBaseLogger,
    services: AppServices,
    caller: { principal: Principal | undefined; rateKey: string },
  ) {
    this.requestId = operation.requestId;
    this.principal = caller.principal;
    this.rateKey = caller.rateKey;
    this.actor = caller.principal?.subject ?? 'anonymous';
    this.health = services.health;
    this.transactions = services.transactions;
    this.loggerContext = { opKey: operation.key, requestId: operation.requestId };
    this.em = root.fork({ loggerContext: this.loggerContext });
    this.loaders = createTaskLoaders(this.em, () => this.document.columns);
  }

  get taskColumns(): TaskColumns | undefined {
    return this.document.columns;
  }

  useDocument(schema: GraphQLSchema, document: DocumentNode): void {
    this.document.columns = taskColumnsFor(taskModel(this.em), taskFieldsOf(schema, document));
  }

  get tasks(): TaskService {
    return (this.lazy.tasks ??= new TaskService(this.em, this.actor, this.transactions, this.principal !== undefined, () => this.document.columns));
  }

  get status(): StatusService {
    return (this.lazy.status ??= new StatusService(this.em, this.actor, this.transactions));
  }

  get dependencies(): DependencyService {
    return (this.lazy.dependencies ??= new DependencyService(this.em, this.actor, this.transactions));
  }

  get removal(): RemovalService {
    return (this.lazy.removal ??= new RemovalService(this.em, this.actor, this.transactions));
  }

  loader<K, V>(key: string, create: () => DataLoader<K, V>): DataLoader<K, V> {
    let found = this.memo.get(key) as DataLoader<K, V> | undefined;
    if (!found) {
      found = create();
      this.memo.set(key, found);
    }
    return found;
  }

  mutated(): void {
    this.loaders.clearAll();
    this.memo.clear();
  }
}

/**
 * Builds one operation's context. Nothing holds a connection; only transactions and statements borrow one.
 *
 * @param root the ORM's root EntityManager, which the operation's fork is made of (never used for entity work
 *   itself: `allowGlobalContext` is off).
 */
export function createContext(
  root: EntityManager,
  operation: Operation,
  log: FastifyBaseLogger,
  services: AppServices,
  caller: { principal: Principal | undefined; rateKey: string },
): GraphQLContext {
  return new OperationContext(root, operation, log, services, caller);
}
