/**
 * Latency at a fixed request rate, open loop: request k is due at start + k/rate and its latency is measured
 * from that due time, whether or not the server (or a busy socket) let it go out then. autocannon's own rate
 * limit is a per-connection budget that refills every second, so every connection fires its whole budget at
 * once at the top of each second: a burst, whose queueing makes the p99 of "half the maximum rate" look like
 * the p99 at full load. Here arrivals are spread evenly, as the latency target means.
 */
import http from 'node:http';
import { responseProblem, type LoadRun } from './load.js';

export interface PacedOptions {
  url: string;
  /** The body of the i-th request. */
  body: (i: number) => string;
  /** Requests per second. */
  rate: number;
  /** Seconds measured. */
  duration: number;
  /**
   * Seconds sent at the same rate, on the same sockets, before the measured ones and not recorded: the measured
   * requests find the connections open and the server settled at this rate, as the full-rate runs' warm-up does.
   */
  warmup?: number;
  /** The most requests in flight at once (sockets of the keep-alive agent). */
  connections: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/** Sends `rate` requests per second for `duration` seconds; resolves once every request has been answered. */
export async function runPaced(o: PacedOptions): Promise<LoadRun> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.connections });
  const target = new URL(`${o.url}/graphql`);
  const latencies: number[] = [];
  const failures: string[] = [];
  let errors = 0;
  const fail = (what: string) => {
    errors++;
    if (failures.length < 3) failures.push(what);
  };
  const inFlight = new Set<Promise<void>>();
  const warmupRequests = Math.round(o.rate * (o.warmup ?? 0));
  const fire = (i: number, due: number) => {
    const measured = i >= warmupRequests;
    const text = o.body(i);
    const done = new Promise<void>((resolve) => {
      const req = http.request(target, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (measured) latencies.push(performance.now() - due);
          const body = Buffer.concat(chunks).toString('utf8');
          const problem = responseProblem(res.statusCode ?? 0, body);
          if (problem) fail(`${problem}: ${body.slice(0, 400)}`);
          resolve();
        });
      });
      req.setTimeout(10_000, () => req.destroy(new Error('timed out after 10 s')));
      req.on('error', (err) => {
        fail(err.message);
        resolve();
      });
      req.end(text);
    });
    inFlight.add(done);
    void done.then(() => inFlight.delete(done));
  };

  const start = performance.now();
  let measuredFrom = start;
  const total = warmupRequests + Math.round(o.rate * o.duration);
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - start) * o.rate) / 1000) + 1);
      for (; sent < due; sent++) {
        if (sent === warmupRequests) measuredFrom = start + (sent * 1000) / o.rate;
        fire(sent, start + (sent * 1000) / o.rate);
      }
      if (sent >= total) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  await Promise.all(inFlight);
  const elapsed = (performance.now() - measuredFrom) / 1000;
  agent.destroy();
  const sorted = latencies.sort((a, b) => a - b);
  return {
    rps: latencies.length / elapsed,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    mean: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
    requests: latencies.length,
    errors,
    failures,
  };
}
