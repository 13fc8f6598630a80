/**
 * Entry point: read the configuration, build the app, wire signals. SIGTERM/SIGINT run the graceful shutdown
 * (exit 0, or 1 if the emergency path ran); a second signal goes straight to the emergency path.
 */
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { createApp } from './app.js';
import { installProcessHandlers } from './lifecycle/signals.js';

let config;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
}
const log = createLogger(config.log);
const app = await createApp(config, { logger: log });
installProcessHandlers(app, log);
app.ready.catch(async () => {
  // The reason is logged; a supervisor sees the exit code.
  await app.stop();
  process.exit(1);
});
