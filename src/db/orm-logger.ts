/**
 * MikroORM's logger, routed into pino. It also counts every SQL statement against the operation that sent it:
 * each operation's reader (and its fork, when it makes one) carries `{ opKey, requestId }` as its logger context,
 * handed to `logQuery` for every statement (by src/db/sql.ts for hand-written ones, by MikroORM for its own),
 * whatever the debug mode.
 */
import { stripVTControlCharacters } from 'node:util';
import { DefaultLogger, type LogContext, type LoggerOptions } from '@mikro-orm/core';
import type { Logger } from '../logger.js';
import type { OperationRegistry } from '../lifecycle/operations.js';

export class PinoOrmLogger extends DefaultLogger {
  constructor(
    options: LoggerOptions,
    private readonly pinoLog: Logger,
    private readonly operations: OperationRegistry,
    private readonly onQuery?: (tookMs: number) => void,
  ) {
    super(options);
  }

  override log(namespace: string, message: string, context?: LogContext): void {
    // Strip MikroORM's terminal colours: log lines are data.
    const msg = stripVTControlCharacters(message);
    const level = context?.level === 'error' ? 'error' : context?.level === 'warning' ? 'warn' : namespace === 'info' ? 'info' : 'debug';
    this.pinoLog[level]({ orm: namespace, requestId: context?.requestId as string | undefined }, msg);
  }

  override error(namespace: string, message: string, context?: LogContext): void {
    this.log(namespace, message, { ...context, level: 'error' });
  }

  override warn(namespace: string, message: string, context?: LogContext): void {
    this.log(namespace, message, { ...context, level: 'warning' });
  }

  override logQuery(context: { query: string } & LogContext): void {
    if (typeof context.took === 'number') this.onQuery?.(context.took);
    const opKey = context.opKey as number | undefined;
    if (opKey !== undefined) {
      const op = this.operations.get(opKey);
      if (op) op.sqlStatements++;
    }
    if (this.pinoLog.isLevelEnabled('debug')) {
      this.pinoLog.debug({ sql: context.query, tookMs: context.took, requestId: context.requestId as string | undefined }, 'sql');
    }
  }

  override isEnabled(): boolean {
    return true;
  }
}
