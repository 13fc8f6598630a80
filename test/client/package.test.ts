/**
 * The client as a package (packages/client, `@task-tracker/client`): its own build emits ESM with types, and plain
 * Node (no tsx) imports it by name through its `exports`, as an app in the workspace would.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Kind, parse } from 'graphql';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const run = promisify(execFile);
const OPERATIONS = path.join(ROOT, 'packages/client/operations');

/** `<Name>Document` for every operation in packages/client/operations/*.graphql: each is exported by name. */
function documentNames(): string[] {
  return readdirSync(OPERATIONS)
    .filter((file) => file.endsWith('.graphql'))
    .flatMap((file) => parse(readFileSync(path.join(OPERATIONS, file), 'utf8')).definitions)
    .flatMap((definition) => (definition.kind === Kind.OPERATION_DEFINITION && definition.name ? [`${definition.name.value}Document`] : []));
}

describe('@task-tracker/client', () => {
  it('builds to dist/ (ESM and .d.ts) and imports by name in plain Node (every operation, verifyWebhookSignature), where it asks for a WebSocket class', async () => {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    await run(npm, ['run', 'build', '--workspace', '@task-tracker/client'], { cwd: ROOT });
    for (const file of ['index.js', 'index.d.ts', 'generated/graphql.js', 'generated/graphql.d.ts']) {
      expect(existsSync(path.join(ROOT, 'packages/client/dist', file)), file).toBe(true);
    }
    const script = `
      const client = await import('@task-tracker/client');
      const names = ${JSON.stringify(['createClient', 'watchTaskEvents', 'TaskTrackerError', 'verifyWebhookSignature', ...documentNames()])};
      let noWebSocket;
      try {
        client.watchTaskEvents({ url: 'http://127.0.0.1:1/graphql' }, {}, { next() {} });
      } catch (err) {
        noWebSocket = err.code;
      }
      const { createHmac } = await import('node:crypto');
      const at = Math.floor(Date.now() / 1000);
      const headers = { 'x-webhook-timestamp': String(at), 'x-webhook-signature': 'v1=' + createHmac('sha256', 's').update(at + '.{}').digest('hex') };
      const verified = await client.verifyWebhookSignature({ secret: 's', headers, body: '{}' });
      console.log(JSON.stringify({ missing: names.filter((n) => !(n in client)), noWebSocket, verified, resolved: import.meta.resolve('@task-tracker/client') }));
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
    const result = JSON.parse(stdout) as { missing: string[]; noWebSocket: string | undefined; verified: boolean; resolved: string };
    expect(documentNames()).toEqual(expect.arrayContaining(['CreateTaskDocument', 'ListTasksDocument', 'CreateWebhookDocument']));
    expect(result.missing).toEqual([]);
    expect(result.verified).toBe(true);
    expect(result.resolved).toMatch(/\/packages\/client\/dist\/index\.js$/);
    // Node 20 has no global WebSocket; Node 22 and later do, and the client takes theirs.
    expect(result.noWebSocket).toBe(typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'undefined' ? 'NO_WEBSOCKET' : undefined);
  }, 60_000);
});
