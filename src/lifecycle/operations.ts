/**
 * The registry of in-flight GraphQL operations: what shutdown drains and what the emergency path names, and where
 * each operation's SQL statements are counted.
 */

/** One operation being executed. */
export interface Operation {
  /** Process-unique key (request ids come from clients and may repeat). */
  readonly key: number;
  readonly requestId: string;
  /** The operation name, or `anonymous`. */
  name: string;
  /** `query`, `mutation`, `subscription`, or `unknown` before parsing. */
  type: string;
  readonly startedAt: number;
  /** SQL statements this operation has sent so far. */
  sqlStatements: number;
  /** `extensions.code` of each error in the response (for metrics). */
  errorCodes: string[];
  /** The operation's estimated cost (0 until measured). */
  cost: number;
}

export class OperationRegistry {
  private nextKey = 1;
  private readonly live = new Map<number, Operation>();
  private readonly idleWaiters = new Set<() => void>();

  /** Registers a new operation; call {@link finish} with it exactly once. */
  start(requestId: string): Operation {
    const op: Operation = { key: this.nextKey++, requestId, name: 'anonymous', type: 'unknown', startedAt: Date.now(), sqlStatements: 0, errorCodes: [], cost: 0 };
    this.live.set(op.key, op);
    return op;
  }

  finish(op: Operation): void {
    this.live.delete(op.key);
    if (this.live.size === 0) for (const wake of this.idleWaiters) wake();
  }

  get(key: number): Operation | undefined {
    return this.live.get(key);
  }

  get size(): number {
    return this.live.size;
  }

  /** The operations still running, oldest first, with their age in ms. */
  snapshot(now = Date.now()): Array<{ name: string; type: string; requestId: string; ageMs: number }> {
    return [...this.live.values()].map((op) => ({ name: op.name, type: op.type, requestId: op.requestId, ageMs: now - op.startedAt }));
  }

  /** Resolves once no operation is in flight. */
  idle(): Promise<void> {
    if (this.live.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        this.idleWaiters.delete(wake);
        resolve();
      };
      this.idleWaiters.add(wake);
    });
  }
}
