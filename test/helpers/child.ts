/**
 * Runs the real entry point (`src/main.ts` under tsx, as `npm start` does, or its build) as a child process and
 * reads its JSON log lines, so tests can send it signals and watch it shut down.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';

/** The repository root: where the server runs, and where `dist/` and `migrations/` are. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Every server this file started: one a failed test left running is killed when the file ends. */
const spawned = new Set<ChildProcess>();
afterAll(() => {
  for (const proc of spawned) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
});

export interface ChildServer {
  proc: ChildProcess;
  /** Parsed stdout lines so far. */
  lines: Array<Record<string, unknown>>;
  stderr: () => string;
  /** Resolves with the first log line matching `pred` (already written or still to come). */
  line(pred: (l: Record<string, unknown>) => boolean, what: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** The server's base URL, from its "listening" line. */
  url(): Promise<string>;
  /** Resolves when the server logs "ready". */
  ready(): Promise<void>;
  /** The server's own process id, from its log lines (under `npm start` it is not `proc.pid`). */
  serverPid(): Promise<number>;
  /** Resolves once the process has exited and its output is read to the end (under `npm start`: npm's exit). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
  /** Signals the server's whole process group, as a Ctrl-C in a terminal does (needs `group: true`). */
  killGroup(signal: NodeJS.Signals): void;
}

/**
 * Starts `src/main.ts` with exactly `env` (plus PATH and HOME), on a free port. With `group`, the server leads its
 * own process group, like a command started from a shell. With `compiled`, it runs the build instead
 * (`dist/src/main.js`, as `npm run start:prod` does; `npm run build` must have run). With `npm`, it runs
 * `npm start` itself, so npm (and the shell it starts) sit between the test and the server, as in a terminal.
 */
export function spawnServer(env: Record<string, string>, { group = false, compiled = false, npm = false } = {}): ChildServer {
  const [command, args] = npm
    ? ['npm', ['start']]
    : [process.execPath, compiled ? ['dist/src/main.js'] : ['--import', 'tsx', 'src/main.ts']];
  const proc = spawn(command, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', HOST: '127.0.0.1', LOG_PRETTY: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: group,
  });
  spawned.add(proc);
  const lines: Array<Record<string, unknown>> = [];
  const watchers = new Set<() => void>();
  let buffer = '';
  let err = '';
  proc.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const text = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (!text) continue;
      try {
        lines.push(JSON.parse(text) as Record<string, unknown>);
      } catch {
        lines.push({ msg: text, unparsed: true });
      }
      for (const w of watchers) w();
    }
  });
  proc.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
  // 'close', not 'exit': it comes once the output is read to its end, and once every process holding the pipes
  // (the server under `npm start`, too) has gone.
  let closed = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('close', (code, signal) => {
      closed = true;
      for (const w of watchers) w();
      resolve({ code, signal });
    }),
  );

  const line: ChildServer['line'] = (pred, what, timeoutMs = 30_000) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = lines.find(pred);
        if (found) {
          cleanup();
          resolve(found);
        } else if (closed) {
          cleanup();
          reject(new Error(`server exited before logging ${what}; stderr: ${err.slice(-2000)}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}; last lines: ${JSON.stringify(lines.slice(-5))}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        watchers.delete(check);
      };
      watchers.add(check);
      check();
    });

  return {
    proc,
    lines,
    stderr: () => err,
    line,
    url: async () => String((await line((l) => typeof l.url === 'string', 'the listening line')).url),
    ready: async () => void (await line((l) => l.msg === 'ready', 'ready')),
    serverPid: async () => Number((await line((l) => typeof l.pid === 'number', 'a line with the pid')).pid),
    exited,
    kill: (signal) => proc.kill(signal),
    killGroup: (signal) => process.kill(-proc.pid!, signal),
  };
}
