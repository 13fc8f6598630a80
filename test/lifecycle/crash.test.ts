import path from 'node:path';
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';

const { db } = useServer('crash');
const ROOT = path.resolve(import.meta.dirname, '..', '..');

function runFixture(crashWith: string): Promise<{ code: number | null; lines: Array<Record<string, unknown>>; tookMs: number }> {
  const started = Date.now();
  const proc = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/crash-after-ready.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: db.url, PORT: '0', HOST: '127.0.0.1', LOG_PRETTY: 'false', CRASH_WITH: crashWith },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  return new Promise((resolve) =>
    proc.once('exit', (code) =>
      resolve({
        code,
        tookMs: Date.now() - started,
        lines: out
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Record<string, unknown>),
      }),
    ),
  );
}

describe('process-level errors', () => {
  it.each([
    ['exception', 'uncaught exception: shutting down', 'boom: uncaught exception'],
    ['rejection', 'unhandled rejection: shutting down', 'boom: unhandled rejection'],
  ])('an unhandled %s is logged and ends in a bounded shutdown with exit code 1', async (kind, message, error) => {
    const { code, lines, tookMs } = await runFixture(kind);
    expect(code).toBe(1);
    const fatal = lines.find((l) => l.msg === message);
    expect(fatal).toMatchObject({ level: 'fatal', err: { message: error } });
    expect(lines.some((l) => l.msg === 'database pool closed')).toBe(true);
    expect(tookMs).toBeLessThan(20_000);
  });
});
