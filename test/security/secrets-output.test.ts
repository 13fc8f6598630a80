/**
 * No secret reaches output (logs are shipped and kept). Each secret setting is given a bad value and the real entry
 * point is run (`npm start`'s src/main.ts, `npm run migrate`'s scripts/migrate.ts, the `task-tracker` command
 * line); the secret's text is then searched for in everything the process wrote, while its error line must still
 * name the setting and say what is wrong. A secret is a distinctive string, so not finding it means something.
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, spawnServer, type ChildServer } from '../helpers/child.js';
import { ownPostgres, type OwnPostgres } from '../helpers/own-postgres.js';
import { waitFor } from '../helpers/server.js';
import { maskKnownSecrets, maskSecrets, maskUrl } from '../../src/secrets.js';

/** Everything a server wrote: stderr and every stdout line. */
const output = (child: ChildServer) => `${child.stderr()}\n${child.lines.map((l) => JSON.stringify(l)).join('\n')}`;

/** Runs a script of the repository (under tsx, as npm does) with exactly `env`; resolves when it exits. */
function run(args: string[], env: Record<string, string>): Promise<{ code: number; out: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_PRETTY: 'false', ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}\n${stderr}`, stderr }),
    );
  });
}

/** Asserts that no part of `secret` (split at its separators, as a mask could cut it) appears in `text`. */
function expectNoSecret(text: string, secret: string) {
  for (const part of [secret, ...secret.split(/[^A-Za-z0-9]+/).filter((p) => p.length >= 4)]) expect(text).not.toContain(part);
}

/** A setting refused at boot: its bad value, the secret in it, and what its one line must say. */
interface Refused {
  name: string;
  value: string;
  secret: string;
  line: RegExp;
}

const REFUSED: Refused[] = [
  { name: 'AUTH_JWT_SECRET', value: 'S3cretXYZ-jwt', secret: 'S3cretXYZ-jwt', line: /^Invalid AUTH_JWT_SECRET: is 13 characters; needs at least 32 \(an HS256 key\)$/ },
  { name: 'METRICS_TOKEN', value: ' S3cretXYZ-mt ', secret: 'S3cretXYZ-mt', line: /^Invalid METRICS_TOKEN: is 12 characters; needs at least 16 / },
  {
    name: 'DATABASE_URL',
    value: 'mysql://admin:S3cretXYZ@db.internal/x',
    secret: 'S3cretXYZ',
    line: /^Invalid DATABASE_URL \(got "mysql:\/\/admin:\*\*\*@db\.internal\/x"\): expected a URL like postgres:/,
  },
  {
    name: 'DATABASE_URL',
    value: 'postgres://admin:S3cretXYZ@db.internal:99999/x',
    secret: 'S3cretXYZ',
    line: /^Invalid DATABASE_URL \(got "postgres:\/\/admin:\*\*\*@db\.internal:99999\/x"\): expected a URL like postgres:/,
  },
  {
    name: 'DATABASE_URL',
    value: 'postgres://admin:S3cret/XYZ?q#f@db.internal/x',
    secret: 'S3cret/XYZ?q#f',
    line: /^Invalid DATABASE_URL \(got "postgres:\/\/admin:\*\*\*@db\.internal\/x"\): expected a URL like postgres:/,
  },
  {
    name: 'DATABASE_URL',
    value: 'postgres://admin:S3cret%zzXYZ@db.internal/x',
    secret: 'S3cret%zzXYZ',
    line: /^Invalid DATABASE_URL \(got "postgres:\/\/admin:\*\*\*@db\.internal\/x"\): its user name, password or database name has a % not followed by two hex digits/,
  },
  {
    name: 'DATABASE_URL',
    value: "host=db.internal password='S3cretXYZ pw' dbname=x",
    secret: 'S3cretXYZ pw',
    line: /^Invalid DATABASE_URL \(got "host=db\.internal password=\*\*\* dbname=x"\): expected a URL like postgres:/,
  },
  {
    name: 'DATABASE_MIGRATION_URL',
    value: 'admin:S3cretXYZ@db.internal:5432/x',
    secret: 'S3cretXYZ',
    line: /^Invalid DATABASE_MIGRATION_URL \(got "admin:\*\*\*@db\.internal:5432\/x"\): expected a URL like postgres:/,
  },
  {
    name: 'DATABASE_REPLICA_URLS',
    value: 'postgres://r:S3cretXYZ-one@r1/db, mysql://r:S3cretXYZ,two@r2/db',
    secret: 'S3cretXYZ-one S3cretXYZ,two',
    line: /^Invalid DATABASE_REPLICA_URLS \(got "postgres:\/\/r:\*\*\*@r1\/db, mysql:\/\/r:\*\*\*@r2\/db"\): expected a URL like postgres:/,
  },
  {
    name: 'AUTH_JWKS_URL',
    value: 'https://keys:S3cretXYZ@[bad/jwks',
    secret: 'S3cretXYZ',
    line: /^Invalid AUTH_JWKS_URL \(got "https:\/\/keys:\*\*\*@\[bad\/jwks"\): expected an http\(s\) URL of a JWKS$/,
  },
];

describe('a refused secret setting', () => {
  it.each(REFUSED)('npm start, $name=$value: one line naming it and what is wrong, the secret nowhere', async ({ name, value, secret, line }) => {
    const child = spawnServer({ [name]: value });
    expect((await child.exited).code).toBe(1);
    const err = child.stderr().trim().split('\n');
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(line);
    expect(err[0]).toContain(name);
    expectNoSecret(output(child), secret);
  });

  // The same loader as the server's: one secret and one URL are enough to show the command goes through it.
  it.each(REFUSED.filter((r) => r.name === 'METRICS_TOKEN' || r.name === 'DATABASE_MIGRATION_URL'))(
    'npm run migrate, $name=$value: the same line, the secret nowhere',
    async ({ name, value, secret, line }) => {
      const result = await run(['--import', 'tsx', 'scripts/migrate.ts'], { [name]: value });
      expect(result.code).toBe(1);
      expect(result.stderr.trim()).toMatch(line);
      expectNoSecret(result.out, secret);
    },
  );
});

describe('a secret PostgreSQL refuses', () => {
  let own: OwnPostgres;
  /** The right password of `own` (random): never printed either. */
  let password: string;
  const wrong = 'S3cretXYZ-wrong-pw';
  const withPassword = (url: string, pw: string) => {
    const u = new URL(url);
    u.password = encodeURIComponent(pw);
    return u.toString();
  };

  beforeAll(async () => {
    own = await ownPostgres();
    password = decodeURIComponent(new URL(own.url).password);
  });
  afterAll(async () => {
    await own?.destroy();
  });

  it('DATABASE_URL with a wrong password: the boot stops naming the settings to check, the password nowhere', async () => {
    const child = spawnServer({ DATABASE_URL: withPassword(own.url, wrong) });
    expect((await child.exited).code).toBe(1);
    const failed = await child.line((l) => String(l.msg).startsWith('boot failed'), 'boot failed');
    expect(failed.msg).toMatch(/the password was rejected: check DATABASE_URL \/ POSTGRES_PASSWORD \(SQLSTATE 28P01\)/);
    expectNoSecret(output(child), wrong);
  });

  it('POSTGRES_PASSWORD wrong: the same, the password nowhere', async () => {
    const u = new URL(own.url);
    const child = spawnServer({
      POSTGRES_HOST: u.hostname,
      POSTGRES_PORT: u.port,
      POSTGRES_DATABASE: u.pathname.slice(1),
      POSTGRES_USER: u.username,
      POSTGRES_PASSWORD: wrong,
    });
    expect((await child.exited).code).toBe(1);
    const failed = await child.line((l) => String(l.msg).startsWith('boot failed'), 'boot failed');
    expect(failed.msg).toMatch(/POSTGRES_PASSWORD/);
    expectNoSecret(output(child), wrong);
  });

  it('npm run migrate with DATABASE_MIGRATION_URL wrong: fails naming the cause, the password nowhere', async () => {
    const result = await run(['--import', 'tsx', 'scripts/migrate.ts'], { DATABASE_MIGRATION_URL: withPassword(own.url, wrong), DB_CONNECT_DEADLINE_MS: '2000' });
    expect(result.code).toBe(1);
    expect(result.out).toMatch(/migration failed: Cannot use the database: the password was rejected/);
    expectNoSecret(result.out, wrong);
  });

  it('a replica with a wrong password at LOG_LEVEL=debug: down in /readyz and the metrics, no password anywhere', async () => {
    const child = spawnServer({ DATABASE_URL: own.url, DATABASE_REPLICA_URLS: withPassword(own.url, wrong), LOG_LEVEL: 'debug' });
    const url = await child.url();
    await child.ready();
    const readiness = await waitFor(async () => {
      const body = await (await fetch(`${url}/readyz`)).text();
      return /password authentication failed/.test(body) ? body : undefined;
    }, 'the replica probed and refused');
    expect(readiness).toMatch(/"state":"down"/);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/db_replica_state\{replica="127\.0\.0\.1:\d+\/task_tracker"\} 2/);
    const listed = await (await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ tasks(first: 1) { totalCount } }' }) })).text();
    child.kill('SIGTERM');
    expect((await child.exited).code).toBe(0);
    for (const text of [output(child), readiness, metrics, listed]) {
      expectNoSecret(text, wrong);
      expectNoSecret(text, password);
    }
  });
});

describe('the command line', () => {
  const cli = (env: Record<string, string>) => run(['bin/task-tracker.mjs', 'tasks', 'list'], env);

  it('never prints the password of TASK_TRACKER_URL', async () => {
    const result = await cli({ TASK_TRACKER_URL: 'http://me:S3cretXYZ-url@127.0.0.1:1/graphql' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: Cannot reach http:\/\/me:\*\*\*@127\.0\.0\.1:1\/graphql: .*credentials/);
    expectNoSecret(result.out, 'S3cretXYZ-url');
  });

  it('never prints TASK_TRACKER_TOKEN, even when fetch quotes the header it refuses', async () => {
    const result = await cli({ TASK_TRACKER_URL: 'http://127.0.0.1:1/graphql', TASK_TRACKER_TOKEN: 'S3cretXYZ\ntoken' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: Cannot reach http:\/\/127\.0\.0\.1:1\/graphql: .*"Bearer \*\*\*" is an invalid header value/);
    expectNoSecret(result.out, 'S3cretXYZ\ntoken');
  });
});

describe('the masking helpers (src/secrets.ts)', () => {
  it('masks the password of one URL, also one new URL refuses, and leaves a URL without one alone', () => {
    expect(maskUrl('postgres://admin:S3cret@host:5432/db')).toBe('postgres://admin:***@host:5432/db');
    expect(maskUrl('postgres://user@corp:S3cret@host/db')).toBe('postgres://user@corp:***@host/db');
    expect(maskUrl('postgres://admin:p@ss@host/db?x=a@b')).toBe('postgres://admin:***@host/db?x=a@b');
    expect(maskUrl('postgres://:S3cret@host/db')).toBe('postgres://:***@host/db');
    expect(maskUrl('postgres://admin:S3 cret@host/db')).toBe('postgres://admin:***@host/db');
    expect(maskUrl('postgres:/admin:S3/cret@host')).toBe('postgres:***@host');
    expect(maskUrl('postgres://host/db?sslpassword=S3cret&x=1')).toBe('postgres://host/db?sslpassword=***&x=1');
    for (const plain of ['postgres://host:99999/db', 'postgres://u@host:5432/db?x=a@b', 'postgres://u@h/db', 'mysql:x']) expect(maskUrl(plain)).toBe(plain);
  });

  it('masks every URL in free text, ending each at a blank or a quote, and a token it is told about', () => {
    expect(maskSecrets('Cannot reach http://u:S3cret@h/graphql: refused "postgres://a:b@c/d"; ask me@example.com')).toBe(
      'Cannot reach http://u:***@h/graphql: refused "postgres://a:***@c/d"; ask me@example.com',
    );
    expect(maskSecrets('postgres://a:x1@h1/d,postgres://b:y1@h2/d')).toBe('postgres://a:***@h1/d,postgres://b:***@h2/d');
    expect(maskKnownSecrets('Headers.append: "Bearer tok3n" is invalid', ['tok3n '])).toBe('Headers.append: "Bearer ***" is invalid');
  });
});
