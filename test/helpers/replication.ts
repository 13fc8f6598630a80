/**
 * A real PostgreSQL primary with one streaming replica, each on a free port, for the replica tests. It needs the
 * server binaries of a PostgreSQL installation (initdb, pg_ctl, pg_basebackup): Debian's packages have them, the
 * embedded PostgreSQL does not, so tests check {@link replicationSkipReason}: without them they skip, and in CI
 * (test/helpers/ci.ts) they fail; `.ci/run` makes sure the binaries are there.
 *
 * PostgreSQL refuses to run as root; when the tests run as root every command runs as the `postgres` OS user
 * (runuser), which owns the data directories.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { appendFile, chmod, chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from '../../src/net.js';

const exec = promisify(execFile);
const NEEDED = ['initdb', 'pg_ctl', 'pg_basebackup', 'postgres'];

/** The bin directory of an installed PostgreSQL with every binary a replica needs, else undefined. */
export function replicationBinDir(): string | undefined {
  const candidates: string[] = [];
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    for (const version of readdirSync(root).sort((a, b) => Number(b) - Number(a))) candidates.push(path.join(root, version, 'bin'));
  }
  candidates.push('/usr/local/pgsql/bin', '/usr/bin');
  const found = candidates.find((dir) => NEEDED.every((bin) => existsSync(path.join(dir, bin))));
  if (!found) return undefined;
  // As root, the binaries must run as `postgres`: without that user (or runuser) they cannot run at all.
  if (process.getuid?.() === 0 && !(existsSync('/usr/sbin/runuser') || existsSync('/sbin/runuser'))) return undefined;
  return found;
}

/** Why the replica tests cannot run on this machine, or undefined when they can. */
export function replicationSkipReason(): string | undefined {
  return replicationBinDir()
    ? undefined
    : 'needs a PostgreSQL installation with initdb, pg_ctl and pg_basebackup (e.g. Debian postgresql-15); the embedded PostgreSQL has no pg_basebackup';
}

export interface Replication {
  readonly primaryPort: number;
  readonly replicaPort: number;
  /** URL of `database` on the primary (as the superuser `postgres`). */
  primaryUrl(database?: string): string;
  /** URL of `database` on the replica. */
  replicaUrl(database?: string): string;
  /** Runs one statement on the primary or the replica (a fresh connection each time) and returns its rows. */
  sql<T = Record<string, unknown>>(on: 'primary' | 'replica', text: string, params?: unknown[], database?: string): Promise<T[]>;
  /** Creates a database on the primary and waits until the replica has it. */
  createDatabase(name: string): Promise<void>;
  /** Freezes WAL replay on the replica (it keeps receiving WAL but applies none) and waits until it is paused. */
  pauseReplay(): Promise<void>;
  resumeReplay(): Promise<void>;
  /** Waits until the replica has replayed everything the primary has written so far. */
  caughtUp(): Promise<void>;
  stopReplica(): Promise<void>;
  startReplica(): Promise<void>;
  /** Stops both servers and removes their files. */
  destroy(): Promise<void>;
}

/** Starts a primary and a streaming replica of it (about 2 s). Call `destroy()` in `afterAll`. */
export async function startReplication(): Promise<Replication> {
  const bin = replicationBinDir();
  if (!bin) throw new Error(replicationSkipReason());
  const asRoot = process.getuid?.() === 0;
  const run = async (cmd: string, args: string[]) => {
    const file = path.join(bin, cmd);
    const [program, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
    try {
      return await exec(program, argv, { timeout: 60_000 });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`${cmd} failed: ${e.stderr || e.message}`, { cause: err });
    }
  };

  // Under the system temp dir, which the `postgres` user can enter.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tt-replication-'));
  await chmod(dir, 0o755);
  const primaryDir = path.join(dir, 'primary');
  const replicaDir = path.join(dir, 'replica');
  const sockets = path.join(dir, 'sockets');
  await mkdir(sockets);
  if (asRoot) {
    const { stdout } = await exec('id', ['-u', 'postgres']);
    const { stdout: gid } = await exec('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
    await chown(sockets, Number(stdout.trim()), Number(gid.trim()));
  }
  const [primaryPort, replicaPort] = [await freePort(), await freePort()];
  let primaryRunning = false;
  let replicaRunning = false;
  const pgCtl = (dataDir: string, ...args: string[]) => run('pg_ctl', ['-D', dataDir, '-l', `${dataDir}.log`, '-w', '-t', '60', ...args]);

  const url = (port: number, database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`;
  const sql = async <T>(on: 'primary' | 'replica', text: string, params: unknown[] = [], database?: string): Promise<T[]> => {
    const client = new pg.Client({ connectionString: url(on === 'primary' ? primaryPort : replicaPort, database) });
    await client.connect();
    try {
      return (await client.query(text, params)).rows as T[];
    } finally {
      await client.end();
    }
  };

  const destroy = async () => {
    if (replicaRunning) await pgCtl(replicaDir, '-m', 'immediate', 'stop').catch(() => undefined);
    if (primaryRunning) await pgCtl(primaryDir, '-m', 'fast', 'stop').catch(() => undefined);
    replicaRunning = primaryRunning = false;
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await run('initdb', ['-D', primaryDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
    await appendFile(
      path.join(primaryDir, 'postgresql.conf'),
      [
        `listen_addresses = '127.0.0.1'`,
        `port = ${primaryPort}`,
        `unix_socket_directories = '${sockets}'`,
        'wal_level = replica',
        'max_wal_senders = 5',
        'hot_standby = on',
        // Small and fast: a throwaway cluster on a shared test machine.
        'shared_buffers = 16MB',
        'max_connections = 60',
        'fsync = off',
        '',
      ].join('\n'),
    );
    await appendFile(path.join(primaryDir, 'pg_hba.conf'), 'host replication all 127.0.0.1/32 trust\n');
    await pgCtl(primaryDir, 'start');
    primaryRunning = true;
    await run('pg_basebackup', ['-h', '127.0.0.1', '-p', String(primaryPort), '-U', 'postgres', '-D', replicaDir, '-R', '-X', 'stream', '-c', 'fast']);
    // The copied postgresql.conf names the primary's port; a later line wins.
    await appendFile(path.join(replicaDir, 'postgresql.conf'), `port = ${replicaPort}\n`);
    await pgCtl(replicaDir, 'start');
    replicaRunning = true;
  } catch (err) {
    await destroy();
    throw err;
  }

  const lsnReached = async () => {
    const [p] = await sql<{ lsn: string }>('primary', 'select pg_current_wal_lsn()::text as lsn');
    const [r] = await sql<{ ok: boolean }>('replica', 'select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok', [p?.lsn]);
    return r?.ok === true;
  };
  const poll = async (check: () => Promise<boolean>, what: string, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check().catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  return {
    primaryPort,
    replicaPort,
    primaryUrl: (database) => url(primaryPort, database),
    replicaUrl: (database) => url(replicaPort, database),
    sql,
    async createDatabase(name) {
      await sql('primary', `create database ${name}`);
      await poll(async () => (await sql('replica', 'select 1 from pg_database where datname = $1', [name])).length === 1, `database ${name} on the replica`);
    },
    async pauseReplay() {
      await sql('replica', 'select pg_wal_replay_pause()');
      await poll(async () => (await sql<{ s: string }>('replica', 'select pg_get_wal_replay_pause_state() as s'))[0]?.s === 'paused', 'replay paused');
    },
    async resumeReplay() {
      await sql('replica', 'select pg_wal_replay_resume()');
    },
    caughtUp: () => poll(lsnReached, 'the replica to catch up'),
    async stopReplica() {
      await pgCtl(replicaDir, '-m', 'fast', 'stop');
      replicaRunning = false;
    },
    async startReplica() {
      await pgCtl(replicaDir, 'start');
      replicaRunning = true;
    },
    destroy,
  };
}
