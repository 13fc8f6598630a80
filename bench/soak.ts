/**
 * The memory check: the 80/20 mix for a long run (e.g. 300 s) while sampling the server's RSS every few seconds.
 * A leak shows as growth in the second half, once caches, JIT and pools have settled: we fit a line to the
 * second half's samples and call it growing when that line rises more than max(5 MB, 2% of the RSS midway).
 */
import type autocannon from 'autocannon';
import { runLoad } from './load.js';
import { rssMb } from './servers.js';

export interface SoakResult {
  seconds: number;
  intervalSeconds: number;
  rps: number;
  errors: number;
  failures: string[];
  samples: Array<{ t: number; rssMb: number }>;
  endRssMb: number | undefined;
  /** The fitted rise over the second half, in MB. */
  lastHalfGrowthMb: number;
  slopeMbPerMinute: number;
  growing: boolean;
}

/** Least-squares slope of y over x. */
function slope(points: ReadonlyArray<{ x: number; y: number }>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const num = points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0);
  const den = points.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

/** Judges RSS samples (t in seconds) of a run of `seconds`. */
export function judgeGrowth(samples: ReadonlyArray<{ t: number; rssMb: number }>, seconds: number) {
  const half = samples.filter((s) => s.t >= seconds / 2);
  const perSecond = slope(half.map((s) => ({ x: s.t, y: s.rssMb })));
  const growth = perSecond * (seconds / 2);
  const mid = half[0]?.rssMb ?? 0;
  return { lastHalfGrowthMb: growth, slopeMbPerMinute: perSecond * 60, growing: growth > Math.max(5, 0.02 * mid) };
}

/** Runs the mix against `url` for `seconds`, sampling the RSS of `pid` every `intervalSeconds`. */
export async function soak(o: {
  url: string;
  pid: number | undefined;
  requests: autocannon.Request[];
  connections: number;
  seconds: number;
  intervalSeconds: number;
  log: (line: string) => void;
}): Promise<SoakResult> {
  const started = Date.now();
  const samples: SoakResult['samples'] = [];
  const sample = () => {
    const rss = rssMb(o.pid);
    const t = Math.round((Date.now() - started) / 1000);
    if (rss !== undefined) samples.push({ t, rssMb: rss });
    o.log(`  soak t=${t}s rss=${rss ?? '?'} MB`);
  };
  sample();
  const timer = setInterval(sample, o.intervalSeconds * 1000);
  try {
    const run = await runLoad({ url: o.url, requests: o.requests, connections: o.connections, duration: o.seconds });
    sample();
    return {
      seconds: o.seconds,
      intervalSeconds: o.intervalSeconds,
      rps: run.rps,
      errors: run.errors,
      failures: run.failures,
      samples,
      endRssMb: samples.at(-1)?.rssMb,
      ...judgeGrowth(samples, o.seconds),
    };
  } finally {
    clearInterval(timer);
  }
}
