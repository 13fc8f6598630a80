/**
 * Where the tests' PostgreSQL comes from: `DATABASE_URL` when set (its server must let the user create
 * databases), else an embedded PostgreSQL started here for the whole run, so `npm test` needs nothing but Node.
 */
import { mkdtemp, rm, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { pino } from 'pino';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A superuser URL; test files create their own databases through it. */
    adminUrl: string;
  }
}

export default async function setup(project: TestProject) {
  // Which Node ran the tests, in every run's log: npm scripts run on node_modules/.bin's, not the machine's own.
  console.log(`tests run on Node.js ${process.version} (${process.execPath})`);
  const external = process.env.DATABASE_URL;
  if (external) {
    project.provide('adminUrl', external);
    return;
  }
  // Under the system temp dir, which every user can enter (PostgreSQL runs as "postgres" when we are root).
  const dir = await mkdtemp(path.join(os.tmpdir(), 'task-tracker-test-'));
  await chmod(dir, 0o755);
  const embedded = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), port: 0, log: pino({ level: 'warn' }) });
  project.provide('adminUrl', embedded.adminUrl);
  return async () => {
    await embedded.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
