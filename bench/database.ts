/**
 * Where the bench database lives: a fresh database in the server DATABASE_URL points at, or, with nothing
 * configured, an embedded PostgreSQL started in a temporary directory (a fresh clone needs nothing but Node).
 * Either way the database is new and empty (the server's migrations create the tables), and goes away afterwards
 * unless `--keep`.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { startEmbeddedPostgres } from '../src/db/embedded.js';

export interface BenchDatabase {
  /** URL of the bench database. */
  url: string;
  /** e.g. "PostgreSQL 17.6 (embedded)". */
  description: string;
  /** Drops the database / stops the embedded server (or only says where it is, when kept). */
  release(): Promise<void>;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function versionOf(url: string): Promise<string> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ v: string }>(`select current_setting('server_version') as v`);
    return rows[0]?.v ?? 'unknown';
  });
}

/** Creates the bench database (or adopts `existing`, which is never dropped); `log` receives progress lines. */
export async function provisionDatabase(options: { keep: boolean; existing?: string; log: (line: string) => void }): Promise<BenchDatabase> {
  if (options.existing) {
    const url = options.existing;
    return { url, description: `PostgreSQL ${await versionOf(url)} at ${new URL(url).host}`, release: async () => undefined };
  }
  const name = `task_tracker_bench_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const external = process.env.DATABASE_URL;
  if (external) {
    await withClient(external, (c) => c.query(`create database ${name}`));
    const url = withDatabase(external, name);
    const host = new URL(external).host;
    options.log(`bench database ${name} created on ${host} (DATABASE_URL)`);
    return {
      url,
      description: `PostgreSQL ${await versionOf(url)} at ${host}`,
      async release() {
        if (options.keep) return options.log(`kept database ${name} on ${host}`);
        await withClient(external, (c) => c.query(`drop database if exists ${name} with (force)`));
      },
    };
  }
  // Under the system temp directory, made enterable: as root, PostgreSQL runs as the "postgres" user.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'task-tracker-bench-'));
  await chmod(dir, 0o755);
  options.log(`starting an embedded PostgreSQL in ${dir} (no DATABASE_URL set)`);
  const embedded = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), port: 0, log: pino({ level: 'warn' }) });
  await withClient(embedded.adminUrl, (c) => c.query(`create database ${name}`));
  const url = withDatabase(embedded.adminUrl, name);
  return {
    url,
    description: `PostgreSQL ${await versionOf(url)} (embedded, default settings)`,
    async release() {
      await embedded.stop();
      if (options.keep) return options.log(`kept the embedded data directory ${dir}`);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
