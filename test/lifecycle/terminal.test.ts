/**
 * The server as a terminal runs it: `npm start` on the embedded PostgreSQL, in a process group of its own. Ctrl-C
 * signals the whole group, closing the terminal sends SIGHUP to it, and a server killed outright must not leave its
 * PostgreSQL behind.
 */
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnServer, type ChildServer } from '../helpers/child.js';
import { waitFor } from '../helpers/server.js';

let dir: string;

beforeAll(async () => {
  // Under the system temp dir, which every user can enter (PostgreSQL runs as "postgres" when we are root).
  dir = await mkdtemp(path.join(os.tmpdir(), 'tt-terminal-'));
  await chmod(dir, 0o755);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Is `pid` running? A zombie is not: an orphan is reaped by whatever adopts it, maybe not at once. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state ..."; comm may hold spaces, so read after the last ")".
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * `npm start` (or the server itself) on the embedded PostgreSQL, leading its own process group. The tests share
 * one data directory (initialised by the first), as runs of `npm start` on one machine do.
 */
async function startEmbedded(npm: boolean): Promise<{ child: ChildServer; dataDir: string; postgresPid: number; serverPid: number }> {
  const dataDir = path.join(dir, 'pg');
  const child = spawnServer({ EMBEDDED_PG_DATA_DIR: dataDir, npm_config_update_notifier: 'false' }, { group: true, npm });
  await child.ready();
  const postgresPid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  expect(alive(postgresPid)).toBe(true);
  return { child, dataDir, postgresPid, serverPid: await child.serverPid() };
}

const warnings = (child: ChildServer) => child.lines.filter((l) => l.level === 'warn' || l.level === 'error' || l.level === 'fatal');

describe('the server in a terminal', () => {
  it('shuts down gracefully on one Ctrl-C to the group of `npm start` (exit 0, no WARN, PostgreSQL stopped)', async () => {
    const { child, dataDir, postgresPid } = await startEmbedded(true);
    child.killGroup('SIGINT');
    await child.exited; // npm's own exit: it ends itself with the SIGINT it got, whatever the server's code
    expect(child.lines.find((l) => l.msg === 'exiting')).toMatchObject({ exitCode: 0 });
    expect(child.lines.filter((l) => l.msg === 'signal received: shutting down gracefully')).toHaveLength(1);
    expect(child.lines.some((l) => l.msg === 'second signal: emergency shutdown')).toBe(false);
    expect(warnings(child)).toEqual([]);
    expect(child.lines.some((l) => l.msg === 'shutdown complete')).toBe(true);
    expect(child.lines.some((l) => l.msg === 'embedded PostgreSQL stopped')).toBe(true);
    // Stopped cleanly: PostgreSQL removes its pid file only at the end of an orderly shutdown.
    expect(alive(postgresPid)).toBe(false);
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
  });

  it('shuts down gracefully when the terminal closes (SIGHUP to the group of `npm start`)', async () => {
    const { child, dataDir, postgresPid, serverPid } = await startEmbedded(true);
    child.killGroup('SIGHUP');
    // npm itself dies of SIGHUP at once; the server goes on shutting down, writing to our pipe.
    await child.exited;
    expect(alive(serverPid)).toBe(false);
    expect(child.lines.find((l) => l.msg === 'exiting')).toMatchObject({ exitCode: 0 });
    expect(child.lines.some((l) => l.msg === 'signal received: shutting down gracefully' && l.signal === 'SIGHUP')).toBe(true);
    expect(warnings(child)).toEqual([]);
    expect(child.lines.some((l) => l.msg === 'embedded PostgreSQL stopped')).toBe(true);
    expect(alive(postgresPid)).toBe(false);
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
  });

  it('stops the embedded PostgreSQL within 5 s when the server process is killed outright (SIGKILL)', async () => {
    const { child, postgresPid } = await startEmbedded(false);
    const killedAt = Date.now();
    child.kill('SIGKILL');
    await child.exited;
    await waitFor(() => !alive(postgresPid), 'the orphaned PostgreSQL to stop', 10_000);
    expect(Date.now() - killedAt).toBeLessThan(5000);
  });
});
