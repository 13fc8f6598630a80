/**
 * The server process, loaded by `src/main.ts` once the Node.js version is checked: read the configuration, build the
 * app, wire signals. SIGTERM/SIGINT/SIGHUP run the graceful shutdown (exit 0, or 1 if the emergency path ran); a
 * second signal goes straight to the emergency path.
 */
import { loadConfigOrExit } from './config.js';
import { createLogger } from './logger.js';
import { createApp } from './app.js';
import { installProcessHandlers } from './lifecycle/signals.js';

const config = loadConfigOrExit();
const log = createLogger(config.log);
const app = await createApp(config, { logger: log });
installProcessHandlers(app, log);
app.ready.catch(async () => {
  // The reason is logged; a supervisor sees the exit code.
  await app.stop();
  process.exit(1);
});
