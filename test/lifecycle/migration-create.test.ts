/**
 * `npm run migration:create -- --check` on a machine with nothing configured: it starts the embedded PostgreSQL itself, and
 * finds the entities and the committed snapshot in agreement (an entity changed without its migration fails here).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/child.js';

const run = promisify(execFile);
let dir: string;

beforeAll(async () => {
  // Under the system temp dir, which every user can enter (PostgreSQL runs as "postgres" when we are root).
  dir = await mkdtemp(path.join(os.tmpdir(), 'tt-migration-create-'));
  await chmod(dir, 0o755);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('npm run migration:create', () => {
  it('runs on the embedded PostgreSQL and finds no change between the entities and the committed snapshot', async () => {
    const dataDir = path.join(dir, 'pg');
    const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_PRETTY: 'false', EMBEDDED_PG_DATA_DIR: dataDir };
    // --check writes nothing: a failing run must not leave a migration in the working tree.
    const { stdout } = await run('npm', ['run', '--silent', 'migration:create', '--', '--check'], { cwd: ROOT, env, timeout: 120_000 });
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; fileName?: string });
    expect(lines.some((l) => l.msg === 'embedded PostgreSQL started (no DATABASE_URL or POSTGRES_* configured)')).toBe(true);
    expect(lines.at(-1)).toMatchObject({ msg: 'the entities match the snapshot: no migration needed' });
    expect(lines.some((l) => l.msg === 'embedded PostgreSQL stopped')).toBe(true);
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
  });
});
