import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CreateTaskDocument, ListTasksDocument, ShowTaskDocument, TaskTrackerError, createClient } from '@task-tracker/client';
import { useServer } from '../helpers/server.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const { server } = useServer('cli');

/** Runs the command line as a user would; resolves with its exit code and output. */
function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/task-tracker.mjs', ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('the typed client', () => {
  it('runs typed operations and throws errors with their code', async () => {
    const client = createClient({ url: `${server.url}/graphql` });
    const { createTask } = await client.request(CreateTaskDocument, { input: { title: 'typed', tags: ['client'], priority: 'HIGH' } });
    expect(createTask).toMatchObject({ title: 'typed', priority: 'HIGH', status: 'PENDING', version: 1 });
    const { tasks } = await client.request(ListTasksDocument, { filter: { tagsAny: ['client'] }, first: 10 });
    expect(tasks.nodes.map((t) => t.id)).toContain(createTask.id);
    const err = await client.request(ShowTaskDocument, { id: 'not-a-uuid' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskTrackerError);
    expect(err).toMatchObject({ code: 'BAD_USER_INPUT', extensions: { field: 'id' } });
  });
});

describe('the command line', () => {
  const url = () => ['--url', `${server.url}/graphql`];

  it('creates, shows, starts, completes and lists tasks, as tables or JSON', async () => {
    const created = await cli(['tasks', 'create', '--title', 'From the CLI', '--priority', 'critical', '--tag', 'cli', '--tag', 'demo', '--json', ...url()]);
    expect(created.code).toBe(0);
    const task = JSON.parse(created.stdout) as { id: string; priority: string; tags: string[] };
    expect(task).toMatchObject({ priority: 'CRITICAL', tags: ['cli', 'demo'] });

    const shown = await cli(['tasks', 'show', task.id, ...url()]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^title\s+From the CLI$/m);
    expect(shown.stdout).toMatch(/^status\s+PENDING$/m);

    expect((await cli(['tasks', 'start', task.id, ...url()])).stdout).toMatch(/is now IN_PROGRESS/);
    expect((await cli(['tasks', 'complete', task.id, '--result', 'done', ...url()])).stdout).toMatch(/is now COMPLETED \(version 3\)/);

    const listed = await cli(['tasks', 'list', '--tag', 'cli', '--status', 'completed', ...url()], {});
    expect(listed.code).toBe(0);
    expect(listed.stdout.split('\n')[0]).toMatch(/^ID\s+TITLE\s+STATUS\s+PRIORITY\s+ASSIGNEE\s+DUEAT$/);
    expect(listed.stdout).toMatch(/From the CLI\s+COMPLETED\s+CRITICAL/);

    const stats = await cli(['tasks', 'stats', '--json'], { TASK_TRACKER_URL: `${server.url}/graphql` });
    expect((JSON.parse(stats.stdout) as { total: number }).total).toBeGreaterThanOrEqual(1);
  });

  it('fails with exit codes scripts can test and one friendly line', async () => {
    const missing = await cli(['tasks', 'show', '00000000-0000-4000-8000-000000000000', ...url()]);
    expect(missing).toMatchObject({ code: 3 });
    expect(missing.stderr).toMatch(/^error: Task .* does not exist \(NOT_FOUND\)\n$/);
    const invalid = await cli(['tasks', 'create', '--title', '   ', ...url()]);
    expect(invalid.code).toBe(4);
    expect(invalid.stderr).toMatch(/BAD_USER_INPUT/);
    const notAllowed = await cli(['tasks', 'fail', '00000000-0000-4000-8000-000000000000', '--json', ...url()]);
    expect(notAllowed.code).toBe(3);
    expect(JSON.parse(notAllowed.stderr)).toMatchObject({ error: { code: 'NOT_FOUND' } });
    expect((await cli(['tasks', 'explode', ...url()])).code).toBe(2);
    expect((await cli(['tasks', 'list', '--bogus'])).code).toBe(2);
    const down = await cli(['tasks', 'list', '--url', 'http://127.0.0.1:9/graphql']);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/Cannot reach/);
  });
});
