/**
 * Runs `npm run migrate` (scripts/migrate.ts under tsx, as npm runs it) as a child process with exactly `env`
 * (plus PATH and HOME) and collects its exit code and JSON log lines.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface MigrateRun {
  code: number | null;
  lines: Array<Record<string, unknown>>;
  stderr: string;
}

/** Runs the migrate command to its end (it is killed after `timeoutMs`). */
export function runMigrate(env: Record<string, string>, timeoutMs = 60_000): Promise<MigrateRun> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', 'scripts/migrate.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_PRETTY: 'false', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    proc.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.once('error', reject);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      const lines = out
        .split('\n')
        .filter((l) => l.trim())
        .map((l): Record<string, unknown> => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return { msg: l, unparsed: true };
          }
        });
      resolve({ code, lines, stderr: err });
    });
  });
}
