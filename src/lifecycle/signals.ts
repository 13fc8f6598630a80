/**
 * Process-level wiring: termination signals and last-resort error handlers all end in one bounded shutdown.
 */
import type { App } from '../app.js';
import type { Logger } from '../logger.js';

/**
 * Installs SIGTERM/SIGINT/SIGHUP and uncaught-error handlers for `app`. The first signal starts the graceful
 * shutdown; the second goes straight to the emergency path. The process exits 0 after a clean stop, 1 otherwise.
 * SIGHUP is what a closing terminal sends: left to its default, it would end the process without a shutdown.
 */
export function installProcessHandlers(app: App, log: Logger): void {
  let signals = 0;
  // The exit code is logged: under `npm start` or a supervisor the process's own code is not always what shows.
  const exit = (code: 0 | 1) => {
    if (code === 0) log.info({ exitCode: code }, 'exiting');
    else log.warn({ exitCode: code }, 'exiting');
    process.exit(code);
  };
  const exitWith = (result: Promise<{ clean: boolean }>) =>
    void result.then(
      ({ clean }) => exit(clean ? 0 : 1),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        exit(1);
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
  process.on('SIGHUP', onSignal);

  const onFatal = (kind: string) => (err: unknown) => {
    log.fatal({ err }, `${kind}: shutting down`);
    exitWith(app.stop().then(() => ({ clean: false })));
  };
  process.on('uncaughtException', onFatal('uncaught exception'));
  process.on('unhandledRejection', onFatal('unhandled rejection'));
}
