/**
 * A PostgreSQL server a test file owns, so it can stop, restart and freeze it: the embedded PostgreSQL in a
 * temporary directory, on a port that stays the same across restarts (so the server's URL stays valid).
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded.js';

export interface OwnPostgres {
  /** URL of the server's database (`task_tracker`). */
  readonly url: string;
  readonly adminUrl: string;
  readonly running: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stops it for good and removes its files. */
  destroy(): Promise<void>;
}

/** Initialises and starts a private PostgreSQL; call `destroy()` in `afterAll`. */
export async function ownPostgres(): Promise<OwnPostgres> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tt-own-pg-'));
  await chmod(dir, 0o755);
  const log = pino({ level: 'warn' });
  let pg: EmbeddedPostgres | undefined = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), port: 0, log });
  const { port, url, adminUrl } = pg;
  return {
    url,
    adminUrl,
    get running() {
      return pg !== undefined;
    },
    async start() {
      pg ??= await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), port, log });
    },
    async stop() {
      await pg?.stop();
      pg = undefined;
    },
    async destroy() {
      await pg?.stop();
      pg = undefined;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
