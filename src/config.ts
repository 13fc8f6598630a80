/**
 * Configuration: the only module that reads `process.env`.
 *
 * Every variable is validated here once, at boot; a bad value stops the process with one line that names the
 * variable and what it accepts. The result is deeply frozen so nothing can change it behind the app's back.
 * That line never holds a secret: a refused URL is shown with its password masked, and a refused secret is not
 * shown at all, only what is wrong with it (logs are shipped and kept).
 */
import { z } from 'zod';
import { maskUrl, maskUrlList } from './secrets.js';
import { invalidProxyList, type TrustProxy } from './http/client-address.js';
import { corsOriginsSchema, type CorsConfig } from './http/cors.js';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, { message: `expected a whole number from ${min} to ${max}` })
    .transform(Number)
    .pipe(z.number().int().min(min, { message: `expected at least ${min}` }).max(max, { message: `expected at most ${max}` }));

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no']))
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const nonEmpty = z.string().trim().min(1, { message: 'must not be empty' });

const postgresUrl = nonEmpty.superRefine((v, ctx) => {
  const u = URL.canParse(v) ? new URL(v) : undefined;
  if (u?.protocol !== 'postgres:' && u?.protocol !== 'postgresql:') {
    ctx.addIssue({ code: 'custom', message: 'expected a URL like postgres://user:pass@host:5432/db' });
    return;
  }
  // The driver decodes these parts; a stray `%` would otherwise fail the boot later with a bare "URI malformed".
  try {
    for (const part of [u.username, u.password, u.pathname]) decodeURIComponent(part);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'its user name, password or database name has a % not followed by two hex digits (write % as %25)' });
  }
});

/**
 * A secret of at least `min` characters. Its error says how long it is and what it needs, never any of its text.
 *
 * @param purpose why the minimum, appended to the message.
 */
const secret = (schema: z.ZodString, min: number, purpose: string) =>
  schema.superRefine((v, ctx) => {
    if (v.length < min) ctx.addIssue({ code: 'custom', message: `is ${v.length} characters; needs at least ${min}${purpose}` });
  });

/**
 * `TRUST_PROXY`: `false`/`0` trusts nobody; `true` one hop (the balancer in front); a whole number that many hops;
 * anything else a comma-separated list of the proxies' addresses.
 */
const trustProxy = z
  .string()
  .trim()
  .transform((v, ctx): TrustProxy => {
    const word = v.toLowerCase();
    if (['false', 'no', '0'].includes(word)) return false;
    if (['true', 'yes'].includes(word)) return 1;
    if (/^\d+$/.test(v)) return Number(v) <= 64 ? Number(v) : (ctx.addIssue({ code: 'custom', message: 'expected at most 64 hops' }), z.NEVER);
    const list = v.split(',').map((a) => a.trim()).filter((a) => a !== '');
    const invalid = invalidProxyList(list);
    if (list.length === 0 || invalid) {
      const message = 'expected true, false, a number of proxy hops, or a comma-separated list of proxy addresses (IPs, CIDR ranges, loopback, linklocal, uniquelocal)';
      ctx.addIssue({ code: 'custom', message: invalid ? `${message}: ${invalid}` : message });
      return z.NEVER;
    }
    return list;
  });

/** The raw environment schema: names and defaults as in docs/configuration.md. */
const envSchema = z.object({
  PORT: int(0, 65535).default(4000),
  HOST: nonEmpty.default('0.0.0.0'),
  DATABASE_URL: postgresUrl.optional(),
  POSTGRES_HOST: nonEmpty.optional(),
  POSTGRES_PORT: int(1, 65535).optional(),
  POSTGRES_DATABASE: nonEmpty.optional(),
  POSTGRES_USER: nonEmpty.optional(),
  POSTGRES_PASSWORD: z.string().optional(),
  EMBEDDED_PG_DATA_DIR: nonEmpty.default('./.data/postgres'),
  EMBEDDED_PG_PORT: int(0, 65535).default(0),
  DB_POOL_MIN: int(0, 1000).default(2),
  DB_POOL_MAX: int(2, 1000).default(10),
  DB_ACQUIRE_TIMEOUT_MS: int(1, 600_000).default(5000),
  DB_STATEMENT_TIMEOUT_MS: int(0, 86_400_000).default(60_000),
  DB_APPLICATION_NAME: z
    .string()
    .trim()
    .regex(/^[\x20-\x7e]{1,63}$/, { message: 'expected 1..63 printable ASCII characters' })
    .default('task-tracker'),
  DB_CONNECT_DEADLINE_MS: int(0, 3_600_000).default(30_000),
  DB_CLOSE_TIMEOUT_MS: int(1, 600_000).default(5000),
  SHUTDOWN_DELAY_MS: int(0, 600_000).default(0),
  SHUTDOWN_GRACE_MS: int(0, 600_000).default(10_000),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  LOG_PRETTY: bool.optional(),
  MAX_BODY_BYTES: int(1024, 1024 * 1024 * 1024).default(16 * 1024 * 1024),
  RATE_LIMIT_POINTS_PER_MINUTE: int(0).default(0),
  NODE_ENV: z.string().trim().optional(),
  MAX_QUERY_DEPTH: int(1, 1000).default(10),
  MAX_ALIASES: int(0, 10_000).default(20),
  MAX_QUERY_COST: int(1).default(10_000),
  METRICS_TOKEN: secret(z.string().trim(), 16, ' (leading and trailing blanks do not count)').optional(),
  AUTH_JWT_SECRET: secret(z.string(), 32, ' (an HS256 key)').optional(),
  AUTH_JWKS_URL: nonEmpty.url({ message: 'expected an http(s) URL of a JWKS' }).optional(),
  AUTH_ISSUER: nonEmpty.optional(),
  AUTH_AUDIENCE: nonEmpty.optional(),
  MAX_DIRECTIVES: int(0, 10_000).default(50),
  MAX_TOKENS: int(1, 1_000_000).default(5000),
  ALLOW_BATCHED_REQUESTS: bool.default(false),
  OPERATION_TIMEOUT_MS: int(0, 3_600_000).default(30_000),
  INTROSPECTION: bool.optional(),
  PLAYGROUND: bool.optional(),
  TRUST_PROXY: trustProxy.default(false),
  EMBEDDED_POSTGRES: bool.optional(),
  DB_LEAK_WARNING_MS: int(100, 3_600_000).default(10_000),
  DB_PGBOUNCER: bool.default(false),
  DATABASE_MIGRATION_URL: postgresUrl.optional(),
  DATABASE_REPLICA_URLS: z
    .string()
    .transform((v) => v.split(',').map((u) => u.trim()).filter((u) => u !== ''))
    .pipe(z.array(postgresUrl).max(16, { message: 'expected at most 16 replica URLs' }))
    .default([]),
  DB_REPLICA_MAX_LAG_MS: int(100, 3_600_000).default(5000),
  DB_REPLICA_WAIT_MS: int(0, 10_000).default(50),
  CORS_ORIGINS: corsOriginsSchema.optional(),
  CORS_CREDENTIALS: bool.default(false),
  WEBHOOK_ALLOW_PRIVATE: bool.default(false),
  WEBHOOK_MAX: int(0, 100_000).default(50),
  WEBHOOK_TIMEOUT_MS: int(100, 600_000).default(10_000),
  WEBHOOK_RETRY_FOR_MS: int(0, 30 * 86_400_000).default(86_400_000),
  WEBHOOK_RETRY_MIN_MS: int(10, 3_600_000).default(1000),
  WEBHOOK_RETRY_MAX_MS: int(10, 86_400_000).default(3_600_000),
  WEBHOOK_SECRET_OVERLAP_MS: int(0, 30 * 86_400_000).default(86_400_000),
  WEBHOOK_LEASE_MS: int(1000, 600_000).default(30_000),
  WEBHOOK_DELIVERY_RETENTION_MS: int(60_000, 365 * 86_400_000).default(7 * 86_400_000),
  WEBHOOK_WORKER: bool.default(true),
});

/** Settings whose value is never echoed: an error says only what is wrong with it. */
const SECRETS: ReadonlySet<string> = new Set(['AUTH_JWT_SECRET', 'METRICS_TOKEN', 'POSTGRES_PASSWORD']);

/** Settings that may hold a URL with a password: echoed with it masked. */
const URLS: Readonly<Record<string, (value: string) => string>> = {
  DATABASE_URL: maskUrl,
  DATABASE_MIGRATION_URL: maskUrl,
  DATABASE_REPLICA_URLS: maskUrlList,
  AUTH_JWKS_URL: maskUrl,
};

/** ` (got "<value>")` for an error line: masked for a URL, nothing for a secret or an unset variable. */
function shown(name: string, value: string | undefined): string {
  if (value === undefined || SECRETS.has(name)) return '';
  return ` (got ${JSON.stringify(URLS[name]?.(value) ?? value)})`;
}

/** Where the database comes from: a URL the operator gave, or the embedded PostgreSQL the server starts itself. */
export type DatabaseSource =
  | { kind: 'url'; url: string }
  | { kind: 'embedded'; dataDir: string; port: number };

/** How webhooks are managed and delivered. */
export interface WebhookConfig {
  /** `WEBHOOK_ALLOW_PRIVATE` (default false): allow URLs to loopback, private and link-local addresses (and http to them). */
  readonly allowPrivate: boolean;
  /** `WEBHOOK_MAX` (default 50): webhooks one server keeps. */
  readonly max: number;
  /** `WEBHOOK_TIMEOUT_MS` (default 10000): a delivery attempt without a 2xx by then failed. */
  readonly timeoutMs: number;
  /** `WEBHOOK_RETRY_FOR_MS` (default 24 h): how long an event is retried before the webhook is disabled. */
  readonly retryForMs: number;
  /** `WEBHOOK_RETRY_MIN_MS` (default 1000): the first wait between attempts; each next wait doubles, with jitter. */
  readonly retryMinMs: number;
  /** `WEBHOOK_RETRY_MAX_MS` (default 1 h): the longest wait between attempts. */
  readonly retryMaxMs: number;
  /** `WEBHOOK_SECRET_OVERLAP_MS` (default 24 h): after a rotation, how long the old secret keeps signing too. */
  readonly secretOverlapMs: number;
  /** `WEBHOOK_LEASE_MS` (default 30000): how long an instance owns a webhook without renewing; a dead one's lease ends after this. */
  readonly leaseMs: number;
  /** `WEBHOOK_DELIVERY_RETENTION_MS` (default 7 days): finished delivery records older than this are deleted. */
  readonly deliveryRetentionMs: number;
  /** `WEBHOOK_WORKER` (default true): this instance delivers webhooks (false: it only manages them). */
  readonly worker: boolean;
}

/** The validated, frozen configuration of one server process. */
export interface Config {
  /** TCP port of the HTTP server (`PORT`, default 4000; 0 picks a free one). */
  readonly port: number;
  /** Interface the HTTP server binds (`HOST`, default `0.0.0.0`). */
  readonly host: string;
  /** `NODE_ENV`: `production` turns introspection off; only `development` puts stacks in error responses. */
  readonly nodeEnv: string | undefined;
  readonly database: {
    /** `DATABASE_URL`, else the `POSTGRES_*` pieces, else the embedded PostgreSQL under `EMBEDDED_PG_DATA_DIR`. */
    readonly source: DatabaseSource;
    /** `DB_POOL_MIN` (default 2): connections opened at boot and kept open when idle. */
    readonly poolMin: number;
    /** `DB_POOL_MAX` (default 10, at least 2: migrations need a second connection). */
    readonly poolMax: number;
    /** `DB_ACQUIRE_TIMEOUT_MS` (default 5000): how long an operation waits for a pooled connection. */
    readonly acquireTimeoutMs: number;
    /** `DB_STATEMENT_TIMEOUT_MS` (default 60000; 0 = none): PostgreSQL `statement_timeout`. */
    readonly statementTimeoutMs: number;
    /** `DB_APPLICATION_NAME` (default `task-tracker`): `application_name` of every connection. */
    readonly applicationName: string;
    /** `DB_CONNECT_DEADLINE_MS` (default 30000): how long boot retries an unreachable database. */
    readonly connectDeadlineMs: number;
    /** `DB_CLOSE_TIMEOUT_MS` (default 5000): the longest shutdown waits for the pool to close. */
    readonly closeTimeoutMs: number;
    /** `DB_LEAK_WARNING_MS` (default 10000): a connection or transaction held longer is logged as a possible leak. */
    readonly leakWarningMs: number;
    /**
     * `DB_PGBOUNCER` (default false): the server's URL leads to PgBouncer in transaction pooling. No startup
     * parameter but `application_name`, `statement_timeout` set per transaction (`SET LOCAL`), and no migrations at
     * boot: the server waits, not ready, until `npm run migrate` has brought the schema up to date.
     */
    readonly pgbouncer: boolean;
    /**
     * The direct (non-PgBouncer) connection used for migrations and LISTEN: `DATABASE_MIGRATION_URL`, else the
     * server's own URL; `undefined` with the embedded PostgreSQL (its URL is known only once it runs). Required
     * with `DB_PGBOUNCER=true`, where the server's own URL leads to PgBouncer.
     */
    readonly directUrl: string | undefined;
    /**
     * `DATABASE_REPLICA_URLS` (comma-separated; default none): streaming replicas of the primary. GraphQL reads
     * outside transactions go to them; writes, transactions and the reads of a request that wrote go to the primary.
     */
    readonly replicaUrls: readonly string[];
    /** `DB_REPLICA_MAX_LAG_MS` (default 5000): a replica further behind the primary is taken out of rotation. */
    readonly replicaMaxLagMs: number;
    /**
     * `DB_REPLICA_WAIT_MS` (default 50; 0 = none): how long a request carrying `x-min-lsn` waits for a replica to
     * replay that far before it reads from the primary instead.
     */
    readonly replicaWaitMs: number;
  };
  readonly shutdown: {
    /** `SHUTDOWN_DELAY_MS` (default 0): readiness is 503 this long before the server stops accepting. */
    readonly delayMs: number;
    /** `SHUTDOWN_GRACE_MS` (default 10000): drain time for in-flight operations before the emergency exit. */
    readonly graceMs: number;
  };
  readonly log: {
    /** `LOG_LEVEL` (default `info`; `debug` shows pool acquire/release and SQL). */
    readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
    /** `LOG_PRETTY`: human-readable lines; default on outside production when stdout is a terminal. */
    readonly pretty: boolean;
  };
  /** `METRICS_TOKEN`: when set, `/metrics` requires `Authorization: Bearer <token>`. */
  readonly metricsToken: string | undefined;
  /** Bearer-token authentication; `undefined` (off) when neither AUTH_JWT_SECRET nor AUTH_JWKS_URL is set. */
  readonly auth:
    | {
        /** `AUTH_JWT_SECRET`: HS256 key (at least 32 characters). */
        readonly secret: string | undefined;
        /** `AUTH_JWKS_URL`: where the RS256/ES256 public keys are published. */
        readonly jwksUrl: string | undefined;
        /** `AUTH_ISSUER`: the required `iss`, when set. */
        readonly issuer: string | undefined;
        /** `AUTH_AUDIENCE`: the required `aud`, when set. */
        readonly audience: string | undefined;
      }
    | undefined;
  /**
   * `TRUST_PROXY` (default false): behind balancers, the client address is the `X-Forwarded-For` entry the
   * nearest untrusted hop saw: `true` trusts one hop, a number that many, a list those addresses.
   */
  readonly trustProxy: TrustProxy;
  /**
   * Browser pages on other origins (src/http/cors.ts): `CORS_ORIGINS` (default unset: off, no CORS headers, and
   * WebSocket upgrades from any origin) lists exact origins (`https://app.example.com,http://localhost:5173`) or
   * is `*`; `CORS_CREDENTIALS` (default false) lets pages send cookies, and is refused with `*`.
   */
  readonly cors: CorsConfig | undefined;
  /** Webhooks (docs/configuration.md, "Webhooks"). */
  readonly webhooks: WebhookConfig;
  readonly limits: {
    /** `MAX_BODY_BYTES` (default 16 MiB): larger request bodies get 413. */
    readonly maxBodyBytes: number;
    /** `RATE_LIMIT_POINTS_PER_MINUTE` (default 0 = off): per-actor budget of operation cost. */
    readonly rateLimitPointsPerMinute: number;
    /** `MAX_QUERY_DEPTH` (default 10). */
    readonly maxQueryDepth: number;
    /** `MAX_ALIASES` (default 20). */
    readonly maxAliases: number;
    /** `MAX_QUERY_COST` (default 10000). */
    readonly maxQueryCost: number;
    /** `MAX_DIRECTIVES` (default 50): directives in one operation. */
    readonly maxDirectives: number;
    /** `MAX_TOKENS` (default 5000): lexical tokens in one document, counted before it is parsed in full. */
    readonly maxTokens: number;
    /** `ALLOW_BATCHED_REQUESTS` (default false): accept a JSON array of operations in one request. */
    readonly allowBatchedRequests: boolean;
    /** `OPERATION_TIMEOUT_MS` (default 30000; 0 = none): an operation still running after this is answered with an error. */
    readonly operationTimeoutMs: number;
    /** `INTROSPECTION`: schema introspection; default on, off when NODE_ENV=production. */
    readonly introspection: boolean;
    /** `PLAYGROUND`: the self-hosted GraphiQL at /playground and GET /graphql; default on, off in production. */
    readonly playground: boolean;
  };
}

/** Thrown for an invalid environment; its message is the one line to print. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function databaseSource(env: z.infer<typeof envSchema>): DatabaseSource {
  if (env.DATABASE_URL) return { kind: 'url', url: env.DATABASE_URL };
  const pieces = [env.POSTGRES_HOST, env.POSTGRES_PORT, env.POSTGRES_DATABASE, env.POSTGRES_USER, env.POSTGRES_PASSWORD];
  if (pieces.some((p) => p !== undefined)) {
    const url = new URL('postgres://localhost');
    const host = env.POSTGRES_HOST ?? 'localhost';
    // An IPv6 literal goes in brackets in a URL; the setter silently ignores what it cannot take (a space, a port).
    url.hostname = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
    if (url.hostname.replace(/^\[|\]$/g, '').toLowerCase() !== host.replace(/^\[|\]$/g, '').toLowerCase()) {
      throw new ConfigError(`Invalid POSTGRES_HOST (got "${host}"): expected a host name or IP address (the port goes in POSTGRES_PORT)`);
    }
    url.port = String(env.POSTGRES_PORT ?? 5432);
    url.pathname = `/${encodeURIComponent(env.POSTGRES_DATABASE ?? 'postgres')}`;
    url.username = encodeURIComponent(env.POSTGRES_USER ?? 'postgres');
    if (env.POSTGRES_PASSWORD) url.password = encodeURIComponent(env.POSTGRES_PASSWORD);
    return { kind: 'url', url: url.toString() };
  }
  return { kind: 'embedded', dataDir: env.EMBEDDED_PG_DATA_DIR, port: env.EMBEDDED_PG_PORT };
}

/**
 * Reads and validates the configuration.
 *
 * @param env the environment to read; defaults to `process.env` (tests pass their own object).
 * @throws ConfigError naming the first invalid variable and what it accepts (never the value of a secret, nor the
 *   password of a URL).
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty variable means "unset", as shells and compose files commonly write it.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue?.path[0] ?? 'environment');
    throw new ConfigError(`Invalid ${name}${shown(name, cleaned[name])}: ${issue?.message ?? 'invalid value'}`);
  }
  const e = parsed.data;
  if (e.DB_POOL_MIN > e.DB_POOL_MAX) {
    throw new ConfigError(`Invalid DB_POOL_MIN (got "${e.DB_POOL_MIN}"): must not exceed DB_POOL_MAX (${e.DB_POOL_MAX})`);
  }
  const source = databaseSource(e);
  if (source.kind === 'embedded' && (e.EMBEDDED_POSTGRES === false || (e.NODE_ENV === 'production' && e.EMBEDDED_POSTGRES !== true))) {
    // In production a database inside the container vanishes with it at the next deploy: never a silent default.
    const why = e.EMBEDDED_POSTGRES === false ? 'EMBEDDED_POSTGRES=false' : 'with NODE_ENV=production the embedded PostgreSQL starts only with EMBEDDED_POSTGRES=true';
    throw new ConfigError(`No database configured: set DATABASE_URL, or POSTGRES_HOST, POSTGRES_PORT, POSTGRES_DATABASE, POSTGRES_USER and POSTGRES_PASSWORD (${why})`);
  }
  if (source.kind === 'url' && e.EMBEDDED_POSTGRES === true) {
    const given = e.DATABASE_URL ? 'DATABASE_URL' : 'POSTGRES_*';
    throw new ConfigError(`Invalid EMBEDDED_POSTGRES (got "true"): ${given} is set too; unset one of them`);
  }
  // Behind PgBouncer, migrations and LISTEN need a connection that bypasses it (they hold session state).
  if (e.DB_PGBOUNCER && (source.kind !== 'url' || !e.DATABASE_MIGRATION_URL)) {
    throw new ConfigError(
      'Invalid DB_PGBOUNCER (got "true"): set DATABASE_URL to PgBouncer and DATABASE_MIGRATION_URL to a direct (non-PgBouncer) URL of the same database',
    );
  }
  if (e.WEBHOOK_RETRY_MIN_MS > e.WEBHOOK_RETRY_MAX_MS) {
    throw new ConfigError(`Invalid WEBHOOK_RETRY_MIN_MS (got "${e.WEBHOOK_RETRY_MIN_MS}"): must not exceed WEBHOOK_RETRY_MAX_MS (${e.WEBHOOK_RETRY_MAX_MS})`);
  }
  if (e.CORS_CREDENTIALS && e.CORS_ORIGINS === undefined) {
    throw new ConfigError('Invalid CORS_CREDENTIALS (got "true"): it applies to the origins in CORS_ORIGINS, which is not set');
  }
  if (e.CORS_CREDENTIALS && e.CORS_ORIGINS === '*') {
    // Browsers refuse the pair anyway; and echoing every origin instead would hand any site its visitors' cookies.
    throw new ConfigError('Invalid CORS_ORIGINS (got "*"): * cannot go with CORS_CREDENTIALS=true; list the origins that may send credentials');
  }
  const production = e.NODE_ENV === 'production';
  const config: Config = {
    port: e.PORT,
    host: e.HOST,
    nodeEnv: e.NODE_ENV,
    database: {
      source,
      poolMin: e.DB_POOL_MIN,
      poolMax: e.DB_POOL_MAX,
      acquireTimeoutMs: e.DB_ACQUIRE_TIMEOUT_MS,
      statementTimeoutMs: e.DB_STATEMENT_TIMEOUT_MS,
      applicationName: e.DB_APPLICATION_NAME,
      connectDeadlineMs: e.DB_CONNECT_DEADLINE_MS,
      closeTimeoutMs: e.DB_CLOSE_TIMEOUT_MS,
      leakWarningMs: e.DB_LEAK_WARNING_MS,
      pgbouncer: e.DB_PGBOUNCER,
      directUrl: e.DATABASE_MIGRATION_URL ?? (source.kind === 'url' ? source.url : undefined),
      replicaUrls: e.DATABASE_REPLICA_URLS,
      replicaMaxLagMs: e.DB_REPLICA_MAX_LAG_MS,
      replicaWaitMs: e.DB_REPLICA_WAIT_MS,
    },
    shutdown: { delayMs: e.SHUTDOWN_DELAY_MS, graceMs: e.SHUTDOWN_GRACE_MS },
    metricsToken: e.METRICS_TOKEN,
    auth:
      e.AUTH_JWT_SECRET || e.AUTH_JWKS_URL
        ? { secret: e.AUTH_JWT_SECRET, jwksUrl: e.AUTH_JWKS_URL, issuer: e.AUTH_ISSUER, audience: e.AUTH_AUDIENCE }
        : undefined,
    trustProxy: e.TRUST_PROXY,
    cors: e.CORS_ORIGINS === undefined ? undefined : { origins: e.CORS_ORIGINS, credentials: e.CORS_CREDENTIALS },
    webhooks: {
      allowPrivate: e.WEBHOOK_ALLOW_PRIVATE,
      max: e.WEBHOOK_MAX,
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      retryForMs: e.WEBHOOK_RETRY_FOR_MS,
      retryMinMs: e.WEBHOOK_RETRY_MIN_MS,
      retryMaxMs: e.WEBHOOK_RETRY_MAX_MS,
      secretOverlapMs: e.WEBHOOK_SECRET_OVERLAP_MS,
      leaseMs: e.WEBHOOK_LEASE_MS,
      deliveryRetentionMs: e.WEBHOOK_DELIVERY_RETENTION_MS,
      worker: e.WEBHOOK_WORKER,
    },
    log: { level: e.LOG_LEVEL, pretty: e.LOG_PRETTY ?? (!production && process.stdout.isTTY === true) },
    limits: {
      maxBodyBytes: e.MAX_BODY_BYTES,
      rateLimitPointsPerMinute: e.RATE_LIMIT_POINTS_PER_MINUTE,
      maxQueryDepth: e.MAX_QUERY_DEPTH,
      maxAliases: e.MAX_ALIASES,
      maxQueryCost: e.MAX_QUERY_COST,
      maxDirectives: e.MAX_DIRECTIVES,
      maxTokens: e.MAX_TOKENS,
      allowBatchedRequests: e.ALLOW_BATCHED_REQUESTS,
      operationTimeoutMs: e.OPERATION_TIMEOUT_MS,
      introspection: e.INTROSPECTION ?? !production,
      playground: e.PLAYGROUND ?? !production,
    },
  };
  return deepFreeze(config);
}

/**
 * For entry points (`npm start`, `npm run migrate`): the configuration, or its one-line error on stderr and exit
 * code 1, with no stack (a wrong setting is the operator's to fix, not a crash).
 */
export function loadConfigOrExit(env: Record<string, string | undefined> = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}
