/**
 * `task-tracker webhooks ...` as a user runs it, against a real server over HTTP that delivers to a real receiver on
 * loopback (WEBHOOK_ALLOW_PRIVATE=true lets http://127.0.0.1 through): the secret printed once is the one that
 * signs, every command's output, and the exit codes scripts test.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListWebhookDeliveriesDocument, createClient, verifyWebhookSignature } from '@task-tracker/client';
import { startServer, useServer, waitFor } from '../helpers/server.js';
import { startReceiver, type ReceivedRequest, type WebhookReceiver } from '../helpers/webhook-receiver.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const MISSING = '00000000-0000-4000-8000-000000000000';
const { db, server } = useServer('cli_webhooks', { WEBHOOK_ALLOW_PRIVATE: 'true' });
let receiver: WebhookReceiver;

beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
});

/** Runs the command line as a user would; resolves with its exit code and output. */
function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/task-tracker.mjs', ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const url = () => ['--url', `${server.url}/graphql`];
const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const header = (request: ReceivedRequest, name: string) => String(request.headers[name] ?? '');

/** Creates a task over GraphQL (the events webhooks are sent); returns its id. */
async function createTask(title: string, tags: string[]): Promise<string> {
  const res = await server.gql<{ createTask: { id: string } }>('mutation ($input: CreateTaskInput!) { createTask(input: $input) { id } }', { input: { title, tags } });
  expect(res.body.errors).toBeUndefined();
  return res.body.data!.createTask.id;
}

/** The next request to webhook `id` after the first `since` requests. */
async function nextRequest(id: string, since: number): Promise<ReceivedRequest> {
  const matches = (r: ReceivedRequest, i: number) => i >= since && header(r, 'x-webhook-id') === id;
  await receiver.waitFor((requests) => requests.some(matches), `a request to webhook ${id}`, 30_000);
  return receiver.requests.find(matches)!;
}

/** Whether `secret` signed `request`, by the typed client's check. */
const verified = (request: ReceivedRequest, secret: string) => verifyWebhookSignature({ secret, headers: request.headers, body: request.body });

describe('task-tracker webhooks', () => {
  it('creates a webhook and prints its secret once, the one that signs its requests; shows and lists it without it', async () => {
    const created = await cli(['webhooks', 'create', '--target', receiver.url, '--kind', 'created,status_changed', '--tag', 'hooks', '--description', 'CLI hook', ...url()]);
    expect(created).toMatchObject({ code: 0, stderr: '' });
    const secret = /^secret\s+(whsec_\S+)$/m.exec(created.stdout)?.[1];
    expect(secret).toBeDefined();
    expect(created.stdout.split(secret!)).toHaveLength(2);
    expect(created.stdout).toMatch(/will not be shown again/);
    expect(created.stdout).toMatch(/^kinds\s+CREATED, STATUS_CHANGED$/m);
    expect(created.stdout).toMatch(/^filter\s+tags any of hooks$/m);
    expect(created.stdout).toMatch(/^enabled\s+true$/m);
    const id = /^id\s+(\S+)$/m.exec(created.stdout)![1]!;

    const since = receiver.requests.length;
    await createTask('Hooked by the CLI', ['hooks']);
    const request = await nextRequest(id, since);
    expect(await verified(request, secret!)).toBe(true);
    expect(await verified(request, 'whsec_not-the-one')).toBe(false);

    const shown = await cli(['webhooks', 'show', id, ...url()]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`^url\\s+${escaped(receiver.url)}$`, 'm'));
    expect(shown.stdout).toMatch(/^description\s+CLI hook$/m);
    expect(shown.stdout).not.toContain(secret);
    expect(shown.stdout).not.toMatch(/^secret/m);

    const listed = await cli(['webhooks', 'list', ...url()]);
    expect(listed.code).toBe(0);
    expect(listed.stdout.split('\n')[0]).toMatch(/^ID\s+URL\s+ENABLED\s+KINDS\s+FILTER\s+DESCRIPTION$/);
    expect(listed.stdout).toMatch(new RegExp(`^${id}\\s+${escaped(receiver.url)}\\s+true\\s+CREATED, STATUS_CHANGED\\s+tags any of hooks\\s+CLI hook$`, 'm'));
    expect(listed.stdout).not.toContain(secret);
    const json = await cli(['webhooks', 'list', '--json', '--first', '1'], { TASK_TRACKER_URL: `${server.url}/graphql` });
    const page = JSON.parse(json.stdout) as { nodes: Array<{ id: string }>; totalCount: number; pageInfo: { endCursor: string | null } };
    expect(page.nodes).toHaveLength(1);
    expect(page.totalCount).toBeGreaterThanOrEqual(1);
    expect(json.stdout).not.toContain(secret);
  }, 60_000);

  it('lists deliveries with their status, filtered by status, and redelivers an event as a new delivery', async () => {
    const made = JSON.parse((await cli(['webhooks', 'create', '--target', receiver.url, '--tag', 'redeliver', '--json', ...url()])).stdout) as { webhook: { id: string } };
    const id = made.webhook.id;
    const since = receiver.requests.length;
    await createTask('Delivered once, then again', ['redeliver']);
    const first = await nextRequest(id, since);
    const eventId = header(first, 'x-webhook-event');
    expect(eventId).not.toBe('');

    // The receiver answered 200; the delivery record says so once the worker has written it.
    const client = createClient({ url: `${server.url}/graphql` });
    await waitFor(async () => {
      const { webhookDeliveries } = await client.request(ListWebhookDeliveriesDocument, { webhookId: id, status: 'DELIVERED' });
      return webhookDeliveries.nodes.some((d) => d.eventId === eventId);
    }, 'the delivery recorded as DELIVERED');

    const table = await cli(['webhooks', 'deliveries', id, ...url()]);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+EVENTID\s+KIND\s+STATUS\s+REDELIVERY\s+ATTEMPTS\s+STATUSCODE\s+LATENCYMS\s+NEXTATTEMPTAT\s+LASTERROR$/);
    expect(table.stdout).toMatch(new RegExp(`^\\S+\\s+${eventId}\\s+CREATED\\s+DELIVERED\\s+false\\s+1\\s+200\\s+\\d+\\s+-\\s+-$`, 'm'));
    const delivered = JSON.parse((await cli(['webhooks', 'deliveries', id, '--status', 'delivered', '--json', ...url()])).stdout) as { nodes: Array<{ eventId: string; status: string }> };
    expect(delivered.nodes.map((d) => d.eventId)).toContain(eventId);
    expect(new Set(delivered.nodes.map((d) => d.status))).toEqual(new Set(['DELIVERED']));
    const failed = JSON.parse((await cli(['webhooks', 'deliveries', id, '--status', 'FAILED', '--json', ...url()])).stdout) as { nodes: unknown[]; totalCount: number };
    expect(failed).toMatchObject({ nodes: [], totalCount: 0 });

    const before = receiver.requests.length;
    const again = await cli(['webhooks', 'redeliver', id, eventId, ...url()]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^redelivery\s+true$/m);
    expect(again.stdout).toMatch(new RegExp(`^eventId\\s+${eventId}$`, 'm'));
    const redelivered = await nextRequest(id, before);
    expect(header(redelivered, 'x-webhook-event')).toBe(eventId);
    expect(header(redelivered, 'x-webhook-delivery')).not.toBe(header(first, 'x-webhook-delivery'));
  }, 60_000);

  it('rotates the secret (printed once; the old one keeps signing beside it), updates, disables, enables and deletes', async () => {
    const created = await cli(['webhooks', 'create', '--target', receiver.url, '--kind', 'created', '--tag', 'rotate', '--json', ...url()]);
    const { webhook, secret: oldSecret } = JSON.parse(created.stdout) as { webhook: { id: string; kinds: string[]; filter: { tagsAny: string[] } }; secret: string };
    expect(webhook).toMatchObject({ kinds: ['CREATED'], filter: { tagsAny: ['rotate'] } });
    const id = webhook.id;

    const rotated = await cli(['webhooks', 'rotate-secret', id, ...url()]);
    expect(rotated.code).toBe(0);
    const newSecret = /^secret\s+(whsec_\S+)$/m.exec(rotated.stdout)?.[1];
    expect(newSecret).toBeDefined();
    expect(newSecret).not.toBe(oldSecret);
    expect(rotated.stdout.split(newSecret!)).toHaveLength(2);
    expect(rotated.stdout).not.toContain(oldSecret);
    expect(rotated.stdout).toMatch(/will not be shown again/);
    expect(rotated.stdout).toMatch(/previous secret signs too until \S+/);
    const since = receiver.requests.length;
    await createTask('Signed twice', ['rotate']);
    const request = await nextRequest(id, since);
    expect(header(request, 'x-webhook-signature').match(/v1=/g)).toHaveLength(2);
    expect(await verified(request, newSecret!)).toBe(true);
    expect(await verified(request, oldSecret)).toBe(true);

    const cleared = await cli(['webhooks', 'update', id, '--kind', 'all', '--no-filter', '--description', '', '--json', ...url()]);
    expect(cleared.code).toBe(0);
    const plain = JSON.parse(cleared.stdout) as { kinds: string[]; description: string | null; filter: { taskId: string | null; assignee: string | null; tagsAny: string[] | null } };
    expect(plain).toMatchObject({ kinds: [], description: null, filter: { taskId: null, assignee: null } });
    expect(plain.filter.tagsAny ?? []).toEqual([]);
    const refiltered = await cli(['webhooks', 'update', id, '--target', 'https://hooks.example.com/tasks', '--kind', 'status_changed', '--assignee', 'ada', '--tag', 'a', '--tag', 'b', '--description', 'moved', ...url()]);
    expect(refiltered.code).toBe(0);
    expect(refiltered.stdout).toMatch(/^url\s+https:\/\/hooks\.example\.com\/tasks$/m);
    expect(refiltered.stdout).toMatch(/^kinds\s+STATUS_CHANGED$/m);
    expect(refiltered.stdout).toMatch(/^filter\s+assignee ada; tags any of a, b$/m);
    expect(refiltered.stdout).toMatch(/^description\s+moved$/m);
    expect(refiltered.stdout).not.toMatch(/^secret/m);

    const disabled = await cli(['webhooks', 'disable', id, ...url()]);
    expect(disabled).toMatchObject({ code: 0, stdout: `${id} is now disabled\n` });
    expect((await cli(['webhooks', 'show', id, ...url()])).stdout).toMatch(/^enabled\s+false$/m);
    const enabled = await cli(['webhooks', 'enable', id, '--json', ...url()]);
    expect(JSON.parse(enabled.stdout)).toMatchObject({ id, enabled: true, disabledAt: null });

    const deleted = await cli(['webhooks', 'delete', id, ...url()]);
    expect(deleted).toMatchObject({ code: 0, stdout: `${id} deleted, with its delivery records\n` });
    expect((await cli(['webhooks', 'show', id, ...url()])).code).toBe(3);
    const gone = await cli(['webhooks', 'deliveries', id, '--json', ...url()]);
    expect(gone.code).toBe(3);
    expect(JSON.parse(gone.stderr)).toMatchObject({ error: { code: 'NOT_FOUND' } });
    const listed = JSON.parse((await cli(['webhooks', 'list', '--first', '100', '--json', ...url()])).stdout) as { nodes: Array<{ id: string }> };
    expect(listed.nodes.map((w) => w.id)).not.toContain(id);
  }, 60_000);

  it('refuses usage errors with exit 2 and a line saying what is wrong, before sending anything', async () => {
    // A server that is not there: a command that got as far as sending would exit 1, not 2.
    const down = ['--url', 'http://127.0.0.1:9/graphql'];
    for (const args of [
      ['webhooks'],
      ['webhooks', 'explode'],
      ['webhooks', 'show'],
      ['webhooks', 'create'],
      ['webhooks', 'create', '--url', 'https://hooks.example.com/x'],
      ['webhooks', 'create', '--target', 'https://hooks.example.com/x', '--no-filter'],
      ['webhooks', 'update', MISSING],
      ['webhooks', 'update', MISSING, '--tag', 'a', '--no-filter'],
      ['webhooks', 'enable'],
      ['webhooks', 'deliveries'],
      ['webhooks', 'redeliver', MISSING],
      ['webhooks', 'list', '--first', 'many'],
      ['webhooks', 'deliveries', MISSING, '--first', '1.5'],
      ['webhooks', 'list', '--bogus'],
    ]) {
      const result = await cli([...args, ...down]);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stdout, args.join(' ')).toBe('');
      expect(result.stderr, args.join(' ')).not.toBe('');
    }
    expect((await cli(['webhooks', 'create', ...down])).stderr).toMatch(/needs --target URL.*--url is the server's/);
    expect((await cli(['webhooks', 'update', MISSING, ...down])).stderr).toMatch(/needs something to change/);
    expect((await cli(['webhooks', 'redeliver', MISSING, ...down])).stderr).toMatch(/needs a webhook ID and an EVENT_ID/);
    expect((await cli(['webhooks', '--help'])).stderr).toMatch(/^usage: task-tracker webhooks <list\|show\|create\|update\|enable\|disable\|rotate-secret\|delete\|deliveries\|redeliver>/);
    const both = await cli([]);
    expect(both.stderr).toMatch(/^usage: task-tracker tasks /m);
    expect(both.stderr).toMatch(/^usage: task-tracker webhooks /m);
  });

  it('fails with exit codes scripts can test: not found 3, refused input 4, unreachable 1', async () => {
    const missing = await cli(['webhooks', 'show', MISSING, ...url()]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/^error: Webhook .* does not exist \(NOT_FOUND\)\n$/);
    expect((await cli(['webhooks', 'delete', MISSING, ...url()])).code).toBe(3);
    expect((await cli(['webhooks', 'disable', MISSING, ...url()])).code).toBe(3);
    expect((await cli(['webhooks', 'rotate-secret', MISSING, ...url()])).code).toBe(3);
    expect((await cli(['webhooks', 'deliveries', MISSING, ...url()])).code).toBe(3);
    const made = JSON.parse((await cli(['webhooks', 'create', '--target', 'https://hooks.example.com/x', '--task', MISSING, '--json', ...url()])).stdout) as { webhook: { id: string } };
    expect((await cli(['webhooks', 'redeliver', made.webhook.id, '999999999', ...url()])).code).toBe(3);

    const notUrl = await cli(['webhooks', 'create', '--target', 'not a url', ...url()]);
    expect(notUrl.code).toBe(4);
    expect(notUrl.stderr).toMatch(/BAD_USER_INPUT/);
    expect((await cli(['webhooks', 'create', '--target', 'ftp://hooks.example.com/x', ...url()])).code).toBe(4);
    expect((await cli(['webhooks', 'create', '--target', 'https://hooks.example.com/x', '--kind', 'exploded', ...url()])).code).toBe(4);
    expect((await cli(['webhooks', 'deliveries', made.webhook.id, '--status', 'lost', ...url()])).code).toBe(4);

    const down = await cli(['webhooks', 'list', '--url', 'http://127.0.0.1:9/graphql']);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/Cannot reach/);
  });

  it('needs a token with the tasks:write scope when authentication is on (exit 5 without)', async () => {
    const secret = 'a-test-secret-that-is-long-enough-for-hs256';
    const withAuth = await startServer(db.url, { AUTH_JWT_SECRET: secret, WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_WORKER: 'false' });
    try {
      const token = (scope: string) => new SignJWT({ sub: 'ada', scope }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(secret));
      const authUrl = ['--url', `${withAuth.url}/graphql`];
      expect((await cli(['webhooks', 'list', ...authUrl])).code).toBe(5);
      const readOnly = await cli(['webhooks', 'list', '--json', ...authUrl], { TASK_TRACKER_TOKEN: await token('tasks:read') });
      expect(readOnly.code).toBe(5);
      expect(JSON.parse(readOnly.stderr)).toMatchObject({ error: { code: 'FORBIDDEN' } });
      expect((await cli(['webhooks', 'create', '--target', 'https://hooks.example.com/x', ...authUrl], { TASK_TRACKER_TOKEN: await token('tasks:read') })).code).toBe(5);
      const writer = await cli(['webhooks', 'list', ...authUrl, '--token', await token('tasks:write')]);
      expect(writer.code).toBe(0);
    } finally {
      await withAuth.stop();
    }
  });
});
