import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnServer } from '../helpers/child.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tt-embedded-'));
  await chmod(dir, 0o755);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function gql<T>(url: string, query: string): Promise<T> {
  const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
  const body = (await res.json()) as { data: T; errors?: unknown };
  expect(body.errors).toBeUndefined();
  return body.data;
}

describe('the embedded PostgreSQL default', () => {
  it('is refused in production unless asked for: one line naming the variables, no PostgreSQL started', async () => {
    const dataDir = path.join(dir, 'never');
    // A misspelled DATABASE_URL is what this guards against: the server must not quietly store data in a container.
    const child = spawnServer({ NODE_ENV: 'production', DATABSE_URL: 'postgres://typo@db/tasks', EMBEDDED_PG_DATA_DIR: dataDir });
    expect((await child.exited).code).toBe(1);
    const err = child.stderr().trim().split('\n');
    expect(err).toEqual([expect.stringMatching(/^No database configured: set DATABASE_URL, or POSTGRES_HOST, POSTGRES_PORT, POSTGRES_DATABASE, POSTGRES_USER and POSTGRES_PASSWORD \(.*EMBEDDED_POSTGRES=true\)$/)]);
    expect(child.lines).toEqual([]);
    expect(existsSync(dataDir)).toBe(false);
  });

  it('starts its own PostgreSQL when none is configured, keeps the data across restarts and stops it on shutdown', async () => {
    const dataDir = path.join(dir, 'pg');
    const first = spawnServer({ EMBEDDED_PG_DATA_DIR: dataDir });
    const url = await first.url();
    await first.ready();
    expect(first.lines.some((l) => l.msg === 'embedded PostgreSQL started (no DATABASE_URL or POSTGRES_* configured)')).toBe(true);
    const { createTask } = await gql<{ createTask: { id: string } }>(url, 'mutation { createTask(input: { title: "kept" }) { id } }');
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(true);
    first.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
    expect(first.lines.some((l) => l.msg === 'embedded PostgreSQL stopped')).toBe(true);
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);

    const second = spawnServer({ EMBEDDED_PG_DATA_DIR: dataDir, SHUTDOWN_DELAY_MS: '1000' }, { group: true });
    const url2 = await second.url();
    await second.ready();
    const { task } = await gql<{ task: { title: string } | null }>(url2, `{ task(id: "${createTask.id}") { title } }`);
    expect(task).toEqual({ title: 'kept' });
    // Ctrl-C in a terminal signals the whole group; the embedded PostgreSQL must keep serving through the drain.
    second.killGroup('SIGINT');
    await second.line((l) => l.msg === 'shutdown started: readiness is now 503', 'shutdown to start');
    const during = await gql<{ task: { title: string } | null }>(url2, `{ task(id: "${createTask.id}") { title } }`);
    expect(during.task).toEqual({ title: 'kept' });
    expect((await second.exited).code).toBe(0);
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
  });
});
