/**
 * The production build (`npm run build`, run with `npm run start:prod`): the compiled server finds its schema,
 * playground and compiled migrations from `dist/`, and behaves like the one run from source.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { ROOT, spawnServer, type ChildServer } from '../helpers/child.js';
import { waitFor } from '../helpers/server.js';
import { olderNode } from '../helpers/older-node.js';

/** The migrations of the source tree, by name, oldest first. */
const SOURCE_MIGRATIONS = readdirSync(path.join(ROOT, 'migrations'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.replace(/\.ts$/, ''))
  .sort();

const databases: TestDatabase[] = [];
let server: ChildServer | undefined;

beforeAll(() => {
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`npm run build failed (${build.status}): ${build.stdout}${build.stderr}`);
}, 180_000);
afterAll(async () => {
  server?.kill('SIGKILL');
  for (const db of databases) await db.drop();
});

async function freshDatabase(label: string): Promise<TestDatabase> {
  const db = await createTestDatabase(label);
  databases.push(db);
  return db;
}

describe('the build (dist/)', () => {
  it('compiles every migration', () => {
    const compiled = readdirSync(path.join(ROOT, 'dist', 'migrations'))
      .filter((f) => f.endsWith('.js'))
      .map((f) => f.replace(/\.js$/, ''))
      .sort();
    expect(SOURCE_MIGRATIONS.length).toBeGreaterThanOrEqual(2);
    expect(compiled).toEqual(SOURCE_MIGRATIONS);
  });

  it('boots on a fresh database applying its compiled migrations, serves the API and the playground, and stops cleanly', async () => {
    const db = await freshDatabase('build_boot');
    server = spawnServer({ DATABASE_URL: db.url }, { compiled: true });
    await server.ready();
    const url = await server.url();
    const migrated = await server.line((l) => l.msg === 'migrations applied', 'the migrations line');
    expect(migrated.applied).toEqual(SOURCE_MIGRATIONS);

    const created = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'mutation { createTask(input: { title: "built", tags: ["dist"] }) { id title tags status } }' }),
    });
    expect(created.status).toBe(200);
    const body = (await created.json()) as { data?: { createTask: { id: string; title: string; tags: string[]; status: string } } };
    expect(body.data?.createTask).toMatchObject({ title: 'built', tags: ['dist'], status: 'PENDING' });
    const read = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'query($id: ID!) { task(id: $id) { title } }', variables: { id: body.data?.createTask.id } }),
    });
    expect(await read.json()).toEqual({ data: { task: { title: 'built' } } });

    const playground = await fetch(`${url}/playground`);
    expect(playground.status).toBe(200);
    expect(await playground.text()).toContain('<html');

    server.kill('SIGTERM');
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(server.lines.some((l) => l.msg === 'shutdown complete')).toBe(true);
  }, 60_000);

  const old = olderNode();
  it(`started on ${old.what} (node dist/src/main.js), prints one line naming both versions and exits 1`, () => {
    const run = spawnSync(old.command, [...old.args, 'dist/src/main.js'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'production' },
      timeout: 30_000,
    });
    expect(run.status, run.stderr).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(new RegExp(`^task-tracker needs Node\\.js 24 or newer, but this is Node\\.js ${old.version.replace(/\./g, '\\.')} \\(.*\\): [^\\n]*\\n$`));
  });

  it('in PgBouncer mode (no migrations at boot) names the pending migrations from its compiled folder', async () => {
    const db = await freshDatabase('build_pending');
    server = spawnServer({ DATABASE_URL: db.url, DB_PGBOUNCER: 'true', DATABASE_MIGRATION_URL: db.url }, { compiled: true });
    const url = await server.url();
    const reason = await waitFor(async () => {
      const res = await fetch(`${url}/readyz`);
      const json = (await res.json()) as { reason?: string };
      return res.status === 503 && json.reason?.includes('pending migration') ? json.reason : undefined;
    }, 'readiness to name the pending migrations');
    expect(reason).toMatch(new RegExp(`^${SOURCE_MIGRATIONS.length} pending migration\\(s\\)`));
    server.kill('SIGTERM');
    await server.exited;
  }, 60_000);
});
