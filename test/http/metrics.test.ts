/**
 * `/metrics` as a Prometheus server sees it: scraped over HTTP from a real server, the exposition text parsed,
 * counters compared before and after operations we send.
 */
import { describe, expect, it } from 'vitest';
import { startServer, useServer } from '../helpers/server.js';

const { db, server } = useServer('metrics');

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Scrape {
  status: number;
  contentType: string | null;
  text: string;
  samples: Sample[];
}

/** Parses the Prometheus text format (0.0.4): one `name{label="value",...} number` per non-comment line. */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

async function scrape(url = server.url, headers: Record<string, string> = {}): Promise<Scrape> {
  const res = await fetch(`${url}/metrics`, { headers });
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type'), text, samples: res.ok ? parse(text) : [] };
}

/** The value of the one sample with this name and (at least) these labels; undefined when absent. */
function value(s: Scrape, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = s.samples.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
  return found[0]?.value;
}

/** Sends an operation with a request id and waits for its report, so the metrics have surely seen it. */
async function run(query: string, requestId: string) {
  const res = await server.gql(query, undefined, { 'x-request-id': requestId });
  await server.report(requestId);
  return res;
}

describe('/metrics', () => {
  it('serves the Prometheus text format with process, pool and state metrics', async () => {
    const s = await scrape();
    expect(s.status).toBe(200);
    expect(s.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(value(s, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(value(s, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);

    const used = value(s, 'db_pool_connections', { state: 'used' });
    const free = value(s, 'db_pool_connections', { state: 'free' });
    expect(used).toBeGreaterThanOrEqual(0);
    expect(free).toBeGreaterThanOrEqual(0);
    expect(value(s, 'db_pool_size')).toBe(used! + free!);
    expect(value(s, 'db_pool_pending_acquires')).toBe(0);
    expect(value(s, 'db_pool_max')).toBe(10);

    expect(value(s, 'server_state')).toBe(1);
    expect(value(s, 'server_draining')).toBe(0);
    expect(value(s, 'circuit_breaker_state')).toBe(0);
    // Registered, though nothing feeds them in this test.
    expect(s.text).toContain('# HELP db_query_duration_seconds ');
    expect(s.text).toContain('# HELP db_ping_duration_seconds ');
    expect(s.text).toContain('# TYPE db_query_duration_seconds histogram');
  });

  it('counts operations by name and type, SQL statements per operation, and errors by code', async () => {
    const before = await scrape();
    for (let i = 0; i < 3; i++) await run('query MetricsProbe { __typename }', `probe-${i}`);
    await run('{ __typename }', 'anonymous-1');
    // Two malformed ids in one operation: two errors, so BAD_USER_INPUT grows by two.
    const bad = await run('query BadIds { a: task(id: "nope") { id } b: task(id: "nope-either") { id } }', 'bad-ids');
    expect(bad.body.errors?.map((e) => e.extensions?.code)).toEqual(['BAD_USER_INPUT', 'BAD_USER_INPUT']);
    const created = await run('mutation CreateProbe { createTask(input: { title: "measured" }) { id } }', 'create-probe');
    expect(created.body.errors).toBeUndefined();
    const after = await scrape();

    const grew = (name: string, labels: Record<string, string>) => (value(after, name, labels) ?? 0) - (value(before, name, labels) ?? 0);
    const probe = { operation: 'MetricsProbe', type: 'query' };
    expect(grew('graphql_operation_duration_seconds_count', probe)).toBe(3);
    expect(value(after, 'graphql_operation_duration_seconds_bucket', { ...probe, le: '+Inf' })).toBe(value(after, 'graphql_operation_duration_seconds_count', probe));
    // Durations are in seconds: three `__typename` queries take far less than 10 s in all.
    expect(value(after, 'graphql_operation_duration_seconds_sum', probe)).toBeLessThan(10);
    expect(grew('graphql_operation_duration_seconds_count', { operation: 'anonymous', type: 'query' })).toBe(1);
    expect(grew('graphql_operation_duration_seconds_count', { operation: 'BadIds', type: 'query' })).toBe(1);
    expect(grew('graphql_operation_duration_seconds_count', { operation: 'CreateProbe', type: 'mutation' })).toBe(1);

    expect(grew('graphql_errors_total', { code: 'BAD_USER_INPUT' })).toBe(2);

    expect(grew('graphql_operation_sql_statements_count', { type: 'query' })).toBe(5);
    // `__typename` and malformed ids never reach the database; creating a task does.
    expect(grew('graphql_operation_sql_statements_sum', { type: 'query' })).toBe(0);
    expect(grew('graphql_operation_sql_statements_sum', { type: 'mutation' })).toBeGreaterThanOrEqual(1);
    expect(grew('graphql_operation_sql_statements_bucket', { type: 'query', le: '0' })).toBe(5);
  });

  it('bounds the operation label: malformed names are "invalid", names past the first 200 are "other"', async () => {
    await run(`query ${'A'.repeat(65)} { __typename }`, 'too-long-name');
    const names = Array.from({ length: 230 }, (_, i) => `Distinct${i}`);
    for (let i = 0; i < names.length; i += 25) {
      await Promise.all(names.slice(i, i + 25).map((n) => run(`query ${n} { __typename }`, `distinct-${n}`)));
    }
    const s = await scrape();
    const labels = new Set(s.samples.filter((x) => x.name === 'graphql_operation_duration_seconds_count').map((x) => x.labels.operation));
    expect(labels.has('invalid')).toBe(true);
    expect(labels.has('A'.repeat(65))).toBe(false);
    expect(labels.has('other')).toBe(true);
    // 200 client names, plus the reserved anonymous / invalid / other.
    expect(labels.size).toBeLessThanOrEqual(203);
    expect(labels.size).toBeGreaterThanOrEqual(200);
    // Earlier tests used 3 names, so of the 230 here 197 were admitted and 33 became "other".
    expect(value(s, 'graphql_operation_duration_seconds_count', { operation: 'other', type: 'query' })).toBe(33);

    // A name admitted before the cap keeps its own series.
    await run('query MetricsProbe { __typename }', 'probe-after-cap');
    const later = await scrape();
    const probe = { operation: 'MetricsProbe', type: 'query' };
    expect(value(later, 'graphql_operation_duration_seconds_count', probe)).toBe(value(s, 'graphql_operation_duration_seconds_count', probe)! + 1);
  });

  it('needs Authorization: Bearer <METRICS_TOKEN> when the token is set', async () => {
    const token = 'metrics-token-0123456789';
    const guarded = await startServer(db.url, { METRICS_TOKEN: token });
    try {
      const none = await scrape(guarded.url);
      expect(none.status).toBe(401);
      expect(JSON.parse(none.text)).toMatchObject({ errors: [{ extensions: { code: 'UNAUTHENTICATED' } }] });
      expect((await scrape(guarded.url, { authorization: 'Bearer wrong-token-0123456789' })).status).toBe(401);
      expect((await scrape(guarded.url, { authorization: token })).status).toBe(401);

      const ok = await scrape(guarded.url, { authorization: `Bearer ${token}` });
      expect(ok.status).toBe(200);
      expect(value(ok, 'server_state')).toBe(1);
      // The other server's traffic is not in this one's registry.
      expect(value(ok, 'graphql_operation_duration_seconds_count', { operation: 'MetricsProbe', type: 'query' })).toBeUndefined();
    } finally {
      await guarded.stop();
    }
    // The token applies to the server it was given to only.
    expect((await scrape()).status).toBe(200);
  });
});
