/**
 * A real PgBouncer (Debian's package) in front of the tests' PostgreSQL, in transaction pooling, on a free port.
 *
 * It is configured to be strict: `ignore_startup_parameters` is empty, so a client sending any startup parameter
 * but `application_name` is refused, as a production PgBouncer refuses it. Every database of the backend is
 * reachable under its own name (the `*` entry), logged in as the backend URL's user, so test databases created
 * after it started need no reload. PgBouncer refuses to run as root: as root it runs as the `postgres` user.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { freePort } from '../../src/net.js';
import { waitFor } from './server.js';

/** Where Debian's `pgbouncer` package installs it (`.ci/run` installs it). */
export const PGBOUNCER_BIN = '/usr/sbin/pgbouncer';

/** Why the PgBouncer tests cannot run here, or undefined when they can. */
export const pgbouncerMissing: string | undefined = existsSync(PGBOUNCER_BIN)
  ? undefined
  : `${PGBOUNCER_BIN} is not installed (Debian: apt-get install pgbouncer; CI installs it)`;

export interface PgBouncer {
  readonly port: number;
  /** A URL of `database` through PgBouncer (no password: PgBouncer logs clients in without one). */
  url(database: string): string;
  /** What PgBouncer wrote to stderr (its log). */
  log(): string;
  /** Stops it (immediate shutdown) and removes its files. Idempotent. */
  stop(): Promise<void>;
}

export interface PgBouncerOptions {
  /** A superuser URL of the backend PostgreSQL; PgBouncer logs in to every database with its user and password. */
  backendUrl: string;
  /** Server connections per database (`default_pool_size`, default 4). */
  poolSize?: number;
}

/** Every PgBouncer this file started: one a failed test left running is killed when the file ends. */
const started = new Set<ChildProcess>();
afterAll(() => {
  for (const proc of started) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
});

/** A libpq connection-string value, quoted. */
function quoted(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => (socket.destroy(), resolve(true)));
    socket.on('error', () => resolve(false));
  });
}

/** Starts PgBouncer and resolves once it accepts connections; call `stop()` in `afterAll`. */
export async function startPgBouncer({ backendUrl, poolSize = 4 }: PgBouncerOptions): Promise<PgBouncer> {
  const backend = new URL(backendUrl);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tt-pgbouncer-'));
  const port = await freePort();
  const login = [
    `host=${quoted(backend.hostname)}`,
    `port=${backend.port || '5432'}`,
    `user=${quoted(decodeURIComponent(backend.username || 'postgres'))}`,
    ...(backend.password ? [`password=${quoted(decodeURIComponent(backend.password))}`] : []),
  ].join(' ');
  const ini = [
    '[databases]',
    `* = ${login}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    // No Unix socket: two instances would collide on /tmp/.s.PGSQL.<port>.
    'unix_socket_dir =',
    // Clients need no password; every database entry logs in as one fixed user.
    'auth_type = any',
    'pool_mode = transaction',
    `default_pool_size = ${poolSize}`,
    'max_client_conn = 500',
    // Empty on purpose: a client sending a startup parameter PgBouncer does not track must fail, as in production.
    'ignore_startup_parameters =',
    `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
    'log_connections = 0',
    'log_disconnections = 0',
  ].join('\n');
  const iniPath = path.join(dir, 'pgbouncer.ini');
  await writeFile(iniPath, `${ini}\n`, { mode: 0o600 });
  let ids: { uid: number; gid: number } | undefined;
  if (process.getuid?.() === 0) {
    ids = {
      uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
      gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
    };
    await chmod(dir, 0o700);
    await chown(dir, ids.uid, ids.gid);
    await chown(iniPath, ids.uid, ids.gid);
  }
  const proc = spawn(PGBOUNCER_BIN, [iniPath], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], ...(ids ?? {}) });
  started.add(proc);
  let stderr = '';
  proc.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM'); // PgBouncer's immediate shutdown
        const killer = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(killer);
      }
      started.delete(proc);
      await rm(dir, { recursive: true, force: true });
    })());

  try {
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`pgbouncer exited with code ${proc.exitCode}: ${stderr.slice(-2000)}`);
        return portOpen(port);
      },
      'pgbouncer to listen',
      15_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    port,
    url: (database) => `postgres://${encodeURIComponent(decodeURIComponent(backend.username || 'postgres'))}@127.0.0.1:${port}/${database}`,
    log: () => stderr,
    stop,
  };
}
