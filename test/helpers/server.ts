/**
 * Boots the real server in-process with `createApp` on port 0 against a test database, and talks to it over HTTP.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll } from 'vitest';
import { createTestDatabase, type TestDatabase } from './database.js';
import { createApp, type App, type OperationReport } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';

/** A GraphQL response as clients see it. */
export interface GqlResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: {
    data?: T | null;
    errors?: Array<{ message: string; path?: string[]; extensions?: Record<string, unknown> & { code?: string } }>;
  };
}

export interface TestServer {
  app: App;
  url: string;
  /** Every log line the server wrote, parsed. */
  logs: Array<Record<string, unknown>>;
  /** POSTs an operation to /graphql. */
  gql<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<GqlResponse<T>>;
  /** Runs `fn` and returns the report of the one operation sent with request id `requestId`. */
  report(requestId: string): Promise<OperationReport>;
  stop(): Promise<void>;
}

/** Starts a server on `databaseUrl` with extra environment variables; resolves when it is ready. */
export async function startServer(databaseUrl: string, env: Record<string, string> = {}, waitReady = true): Promise<TestServer> {
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const config = loadConfig({ DATABASE_URL: databaseUrl, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', DB_POOL_MIN: '0', ...env });
  const app = await createApp(config, { logger: createLogger(config.log, sink) });
  if (waitReady) await app.ready;
  const reports = new Map<string, OperationReport>();
  const waiting = new Map<string, (r: OperationReport) => void>();
  app.events.on('operation', (r: OperationReport) => {
    reports.set(r.requestId, r);
    waiting.get(r.requestId)?.(r);
  });
  return {
    app,
    url: app.url,
    logs,
    async gql<T>(query: string, variables?: Record<string, unknown>, headers: Record<string, string> = {}) {
      const res = await fetch(`${app.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ query, variables }),
      });
      return { status: res.status, headers: res.headers, body: (await res.json()) as GqlResponse<T>['body'] };
    },
    report(requestId) {
      const done = reports.get(requestId);
      if (done) return Promise.resolve(done);
      return new Promise((resolve) => waiting.set(requestId, resolve));
    },
    async stop() {
      await app.stop();
    },
  };
}

/** Polls `check` until it returns a truthy value (an event we wait for, not a fixed sleep). */
export async function waitFor<T>(check: () => Promise<T> | T, what: string, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const TASK_FIELDS = `id title description type priority status assignee createdBy tags metadata context progress
  result errorMessage retryCount estimatedMinutes actualMinutes dueAt startedAt completedAt archivedAt createdAt updatedAt version`;

/**
 * The usual setup of a test file: a fresh database and a server on it for the whole file, stopped and dropped
 * afterwards. Returns stable handles that work once `beforeAll` has run.
 */
export function useServer(label: string, env: Record<string, string> = {}): { db: TestDatabase; server: TestServer } {
  let db: TestDatabase | undefined;
  let server: TestServer | undefined;
  beforeAll(async () => {
    db = await createTestDatabase(label);
    server = await startServer(db.url, env);
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });
  const live = <T>(get: () => T | undefined, what: string): T => {
    const value = get();
    if (!value) throw new Error(`${what} is used before beforeAll ran`);
    return value;
  };
  return {
    db: {
      get name() {
        return live(() => db, 'the database').name;
      },
      get url() {
        return live(() => db, 'the database').url;
      },
      client: () => live(() => db, 'the database').client(),
      drop: () => live(() => db, 'the database').drop(),
    },
    server: {
      get app() {
        return live(() => server, 'the server').app;
      },
      get url() {
        return live(() => server, 'the server').url;
      },
      get logs() {
        return live(() => server, 'the server').logs;
      },
      gql: (query, variables, headers) => live(() => server, 'the server').gql(query, variables, headers),
      report: (requestId) => live(() => server, 'the server').report(requestId),
      stop: () => live(() => server, 'the server').stop(),
    },
  };
}
