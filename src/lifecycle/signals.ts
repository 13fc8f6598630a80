/**
 * Process-level wiring: termination signals and last-resort error handlers all end in one bounded shutdown.
 */
import type { App } from '../app.js';
import type { Logger } from '../logger.js';

/**
 * Installs SIGTERM/SIGINT and uncaught-error handlers for `app`. The first signal starts the graceful shutdown;
 * the second goes straight to the emergency path. The process exits 0 after a clean stop, 1 otherwise.
 */
export function installProcessHandlers(app: App, log: Logger): void {
  let signals = 0;
  const exitWith = (result: Promise<{ clean: boolean }>) =>
    void result.then(
      ({ clean }) => process.exit(clean ? 0 : 1),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );

  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      log.info({ signal }, 'signal received: shutting down gracefully');
      exitWith(app.stop());
    } else {
      log.warn({ signal }, 'second signal: emergency shutdown');
      exitWith(app.emergencyStop(`second signal (${signal})`));
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const onFatal = (kind: string) => (err: unknown) => {
    log.fatal({ err }, `${kind}: shutting down`);
    exitWith(app.stop().then(() => ({ clean: false })));
  };
  process.on('uncaughtException', onFatal('uncaught exception'));
  process.on('unhandledRejection', onFatal('unhandled rejection'));
}
