import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

describe('configuration', () => {
  it('has the defaults of docs/configuration.md and chooses the embedded PostgreSQL when nothing is configured', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 4000,
      host: '0.0.0.0',
      database: {
        source: { kind: 'embedded', dataDir: './.data/postgres', port: 0 },
        poolMin: 2,
        poolMax: 10,
        acquireTimeoutMs: 5000,
        statementTimeoutMs: 60000,
        applicationName: 'task-tracker',
        connectDeadlineMs: 30000,
      },
      shutdown: { delayMs: 0, graceMs: 10000 },
      log: { level: 'info' },
      limits: { maxBodyBytes: 16777216, rateLimitPointsPerMinute: 0, maxQueryDepth: 10, maxAliases: 20, maxQueryCost: 10000 },
    });
  });

  it('starts the embedded PostgreSQL in production only when asked for, and never beside a configured database', () => {
    const refused = () => loadConfig({ NODE_ENV: 'production' });
    expect(refused).toThrow(ConfigError);
    expect(refused).toThrow(/^No database configured: set DATABASE_URL, or POSTGRES_HOST, .*EMBEDDED_POSTGRES=true/);
    expect(loadConfig({ NODE_ENV: 'production', EMBEDDED_POSTGRES: 'true' }).database.source.kind).toBe('embedded');
    expect(loadConfig({ NODE_ENV: 'production', DATABASE_URL: 'postgres://a@h/d' }).database.source.kind).toBe('url');
    expect(() => loadConfig({ EMBEDDED_POSTGRES: 'false' })).toThrow(/^No database configured: .*EMBEDDED_POSTGRES=false/);
    expect(() => loadConfig({ EMBEDDED_POSTGRES: 'true', DATABASE_URL: 'postgres://a@h/d' })).toThrow(/^Invalid EMBEDDED_POSTGRES .*DATABASE_URL is set too/);
  });

  it('reads TRUST_PROXY as off, one hop, a number of hops, or proxy addresses', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(1);
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, loopback' }).trustProxy).toEqual(['10.0.0.0/8', 'loopback']);
    expect(() => loadConfig({ TRUST_PROXY: 'my-balancer' })).toThrow(/^Invalid TRUST_PROXY \(got "my-balancer"\): expected true, false, a number of proxy hops/);
  });

  it('refuses a POSTGRES_HOST a URL cannot carry instead of connecting somewhere else', () => {
    expect(() => loadConfig({ POSTGRES_HOST: 'db.internal:6543' })).toThrow(/^Invalid POSTGRES_HOST \(got "db.internal:6543"\): .*POSTGRES_PORT/);
    expect(() => loadConfig({ POSTGRES_HOST: 'bad host' })).toThrow(/^Invalid POSTGRES_HOST/);
    expect(new URL((loadConfig({ POSTGRES_HOST: '::1' }).database.source as { url: string }).url).hostname).toBe('[::1]');
  });

  it('is frozen all the way down', () => {
    const c = loadConfig({});
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.database)).toBe(true);
    expect(Object.isFrozen(c.database.source)).toBe(true);
  });

  it('lets DATABASE_URL win over the POSTGRES_* pieces', () => {
    const c = loadConfig({ DATABASE_URL: 'postgres://a@h:1/d', POSTGRES_HOST: 'other' });
    expect(c.database.source).toEqual({ kind: 'url', url: 'postgres://a@h:1/d' });
  });

  it('builds a URL from the POSTGRES_* pieces, escaping them', () => {
    const c = loadConfig({ POSTGRES_HOST: 'db.internal', POSTGRES_PORT: '6543', POSTGRES_DATABASE: 'tasks', POSTGRES_USER: 'app', POSTGRES_PASSWORD: 'p@ss:w/rd' });
    expect(c.database.source.kind).toBe('url');
    const u = new URL((c.database.source as { url: string }).url);
    expect([u.hostname, u.port, u.pathname, u.username, decodeURIComponent(u.password)]).toEqual(['db.internal', '6543', '/tasks', 'app', 'p@ss:w/rd']);
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ DATABASE_URL: '', PORT: '' }).port).toBe(4000);
  });

  it.each([
    ['PORT', 'abc', /^Invalid PORT \(got "abc"\): expected a whole number/],
    ['PORT', '70000', /^Invalid PORT \(got "70000"\): expected at most 65535/],
    ['DB_POOL_MAX', '1', /^Invalid DB_POOL_MAX \(got "1"\): expected at least 2/],
    ['DATABASE_URL', 'mysql://x', /^Invalid DATABASE_URL \(got "mysql:\/\/x"\): expected a URL like postgres:/],
    ['LOG_LEVEL', 'loud', /^Invalid LOG_LEVEL \(got "loud"\)/],
    ['SHUTDOWN_GRACE_MS', '-1', /^Invalid SHUTDOWN_GRACE_MS/],
    ['LOG_PRETTY', 'maybe', /^Invalid LOG_PRETTY/],
    ['DB_APPLICATION_NAME', 'x'.repeat(64), /^Invalid DB_APPLICATION_NAME/],
  ])('refuses %s=%s with one line naming it', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(message);
  });

  it('refuses DB_POOL_MIN above DB_POOL_MAX', () => {
    expect(() => loadConfig({ DB_POOL_MIN: '5', DB_POOL_MAX: '3' })).toThrow(/^Invalid DB_POOL_MIN/);
  });

  it('gives the direct URL for migrations and LISTEN: DATABASE_MIGRATION_URL, else the server\'s URL, none when embedded', () => {
    expect(loadConfig({}).database).toMatchObject({ pgbouncer: false, directUrl: undefined });
    expect(loadConfig({ DATABASE_URL: 'postgres://a@h:1/d' }).database.directUrl).toBe('postgres://a@h:1/d');
    expect(loadConfig({ POSTGRES_HOST: 'h' }).database.directUrl).toBe('postgres://postgres@h:5432/postgres');
    const c = loadConfig({ DATABASE_URL: 'postgres://a@bouncer:6432/d', DB_PGBOUNCER: 'true', DATABASE_MIGRATION_URL: 'postgres://a@h:5432/d' });
    expect(c.database).toMatchObject({ pgbouncer: true, directUrl: 'postgres://a@h:5432/d', source: { kind: 'url', url: 'postgres://a@bouncer:6432/d' } });
    expect(loadConfig({ DATABASE_MIGRATION_URL: 'postgres://m@h:1/d' }).database.directUrl).toBe('postgres://m@h:1/d');
  });

  it('refuses DB_PGBOUNCER=true without a direct DATABASE_MIGRATION_URL, or with the embedded PostgreSQL', () => {
    expect(() => loadConfig({ DATABASE_URL: 'postgres://a@bouncer:6432/d', DB_PGBOUNCER: 'true' })).toThrow(/^Invalid DB_PGBOUNCER \(got "true"\): .*DATABASE_MIGRATION_URL/);
    expect(() => loadConfig({ DB_PGBOUNCER: 'true', DATABASE_MIGRATION_URL: 'postgres://a@h:5432/d' })).toThrow(ConfigError);
    expect(() => loadConfig({ DB_PGBOUNCER: 'sometimes' })).toThrow(/^Invalid DB_PGBOUNCER \(got "sometimes"\)/);
    expect(() => loadConfig({ DATABASE_MIGRATION_URL: 'mysql://x' })).toThrow(/^Invalid DATABASE_MIGRATION_URL/);
  });
});

describe('read replica configuration', () => {
  it('has no replicas by default, a 5 s lag bound and a 50 ms wait', () => {
    expect(loadConfig({}).database).toMatchObject({ replicaUrls: [], replicaMaxLagMs: 5000, replicaWaitMs: 50 });
  });

  it('splits DATABASE_REPLICA_URLS on commas, trimming blanks', () => {
    const c = loadConfig({ DATABASE_REPLICA_URLS: ' postgres://r1:5432/db , postgres://r2:5432/db,', DB_REPLICA_MAX_LAG_MS: '1500', DB_REPLICA_WAIT_MS: '0' });
    expect(c.database.replicaUrls).toEqual(['postgres://r1:5432/db', 'postgres://r2:5432/db']);
    expect(c.database).toMatchObject({ replicaMaxLagMs: 1500, replicaWaitMs: 0 });
    expect(Object.isFrozen(c.database.replicaUrls)).toBe(true);
  });

  it.each([
    ['DATABASE_REPLICA_URLS', 'postgres://ok/db,mysql://x', /^Invalid DATABASE_REPLICA_URLS .*expected a URL like postgres:/],
    ['DB_REPLICA_MAX_LAG_MS', '10', /^Invalid DB_REPLICA_MAX_LAG_MS \(got "10"\): expected at least 100/],
    ['DB_REPLICA_WAIT_MS', '-1', /^Invalid DB_REPLICA_WAIT_MS/],
  ])('refuses %s=%s with one line naming it', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(message);
  });
});

describe('error lines never hold a secret', () => {
  const refusal = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error(`accepted ${JSON.stringify(env)}`);
  };

  it.each([
    ['AUTH_JWT_SECRET', 'S3cretXYZ', /^Invalid AUTH_JWT_SECRET: is 9 characters; needs at least 32 \(an HS256 key\)$/],
    ['METRICS_TOKEN', '  S3cretXYZ  ', /^Invalid METRICS_TOKEN: is 9 characters; needs at least 16 \(leading and trailing blanks do not count\)$/],
    ['DATABASE_URL', 'mysql://admin:S3cretXYZ@host/x', /^Invalid DATABASE_URL \(got "mysql:\/\/admin:\*\*\*@host\/x"\): expected a URL like postgres:/],
    ['DATABASE_URL', 'postgres://admin:S3cretXYZ@host:99999/x', /^Invalid DATABASE_URL \(got "postgres:\/\/admin:\*\*\*@host:99999\/x"\): expected a URL/],
    ['DATABASE_URL', ' postgres://admin:S3cret#XYZ@host/x', /^Invalid DATABASE_URL \(got " postgres:\/\/admin:\*\*\*@host\/x"\): expected a URL/],
    ['DATABASE_URL', 'admin:S3cretXYZ@host/x', /^Invalid DATABASE_URL \(got "admin:\*\*\*@host\/x"\): expected a URL/],
    ['DATABASE_URL', 'host=h password=S3cretXYZ', /^Invalid DATABASE_URL \(got "host=h password=\*\*\*"\): expected a URL/],
    ['DATABASE_MIGRATION_URL', 'mysql://m:S3cretXYZ@host/x', /^Invalid DATABASE_MIGRATION_URL \(got "mysql:\/\/m:\*\*\*@host\/x"\)/],
    ['DATABASE_REPLICA_URLS', 'postgres://r:S3cretXYZ@r1/db,mysql://r:S3cret,XYZ@r2/db', /^Invalid DATABASE_REPLICA_URLS \(got "postgres:\/\/r:\*\*\*@r1\/db,mysql:\/\/r:\*\*\*@r2\/db"\)/],
    ['AUTH_JWKS_URL', 'https://k:S3cretXYZ@[bad/jwks', /^Invalid AUTH_JWKS_URL \(got "https:\/\/k:\*\*\*@\[bad\/jwks"\)/],
  ])('refuses %s=%s naming what is wrong, not the secret', (name, value, message) => {
    const line = refusal({ [name]: value });
    expect(line).toMatch(message);
    expect(line).not.toMatch(/S3cret|XYZ/);
  });

  it('refuses a stray % in a URL\'s password, which would fail the boot later, without showing the password', () => {
    const line = refusal({ DATABASE_URL: 'postgres://admin:S3cret%zzXYZ@host/x' });
    expect(line).toBe('Invalid DATABASE_URL (got "postgres://admin:***@host/x"): its user name, password or database name has a % not followed by two hex digits (write % as %25)');
    expect(loadConfig({ DATABASE_URL: 'postgres://admin:S3cret%25XYZ@host/x' }).database.source).toMatchObject({ kind: 'url' });
  });

  it('shows a URL without a password as given', () => {
    expect(refusal({ DATABASE_URL: 'mysql://host:3306/x?a=b@c' })).toMatch(/^Invalid DATABASE_URL \(got "mysql:\/\/host:3306\/x\?a=b@c"\)/);
  });

  it('never shows POSTGRES_PASSWORD, whichever POSTGRES_* piece is refused', () => {
    const line = refusal({ POSTGRES_HOST: 'h', POSTGRES_PORT: 'abc', POSTGRES_PASSWORD: 'S3cretXYZ' });
    expect(line).toMatch(/^Invalid POSTGRES_PORT \(got "abc"\): expected a whole number/);
    expect(line).not.toMatch(/S3cret/);
  });
});
