/**
 * The process logger: pino, JSON lines in production, readable lines in development.
 * One instance per app (built by `createApp` or `main`), handed down; never a module-level singleton.
 */
import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

export type { Logger };

/**
 * Builds the root logger for a server.
 *
 * @param log the `log` section of the configuration.
 * @param destination optional stream (tests capture lines with it); defaults to stdout.
 */
export function createLogger(log: Config['log'], destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level: log.level,
    base: { pid: process.pid },
    // pino's numeric levels are exact but opaque to humans and log shippers; name them.
    formatters: { level: (label) => ({ level: label }) },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['req.headers.authorization', '*.password'], censor: '[redacted]' },
  };
  if (destination) return pino(options, destination);
  if (log.pretty) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } });
  }
  return pino(options);
}
