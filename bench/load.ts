/**
 * One load run with autocannon, with every response checked: a status other than 200, a body that is not JSON,
 * a body with `errors`, or one without `data` counts as an error, and any error (socket errors and timeouts
 * included) makes the run invalid. The first few failures are kept verbatim for the report.
 */
import autocannon from 'autocannon';

export interface LoadRun {
  /** Completed requests per second over the measured duration. */
  rps: number;
  /** Latency percentiles in ms. */
  p50: number;
  p99: number;
  mean: number;
  requests: number;
  /** Every failed response or request (non-200, GraphQL errors, socket errors, timeouts). */
  errors: number;
  /** Up to 3 failures, as "status: body". */
  failures: string[];
}

export interface LoadOptions {
  url: string;
  requests: autocannon.Request[];
  connections: number;
  duration: number;
}

/** Checks one response as a GraphQL client would; returns what is wrong, or undefined. */
export function responseProblem(status: number, body: string): string | undefined {
  if (status !== 200) return `HTTP ${status}`;
  let parsed: { data?: unknown; errors?: unknown };
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    return 'body is not JSON';
  }
  if (parsed.errors !== undefined) return 'errors in body';
  if (parsed.data === null || typeof parsed.data !== 'object') return 'no data in body';
  return undefined;
}

/** Runs the load; resolves with the measurement (never throws for failed responses: they are counted). */
export async function runLoad(o: LoadOptions): Promise<LoadRun> {
  let failed = 0;
  const failures: string[] = [];
  const requests = o.requests.map((r) => ({
    ...r,
    onResponse: (status: number, body: string) => {
      const problem = responseProblem(status, body);
      if (problem === undefined) return;
      failed++;
      if (failures.length < 3) failures.push(`${problem}: ${body.slice(0, 400)}`);
    },
  }));
  const result = await autocannon({
    url: `${o.url}/graphql`,
    connections: o.connections,
    duration: o.duration,
    timeout: 10,
    requests,
  });
  // non2xx responses are already in `failed` (their bodies were checked); socket errors and timeouts (which
  // autocannon counts among its `errors`) are not.
  const transport = result.errors;
  if (transport > 0 && failures.length < 3) failures.push(`${result.errors} socket errors or timeouts (${result.timeouts} timeouts)`);
  return {
    rps: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    mean: result.latency.mean,
    requests: result.requests.total,
    errors: failed + transport,
    failures,
  };
}
