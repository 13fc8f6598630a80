/**
 * The memory check: the 80/20 mix for a long run (e.g. 300 s) while sampling the server's RSS every second.
 * A leak shows as growth in the second half, once caches, JIT and pools have settled.
 *
 * RSS saws by 50 MB and more as V8's heap fills and is collected, every 30-60 s, so a line fitted to the raw
 * samples ends where the run happened to stop in a cycle: ±6 MB over a flat sawtooth, and +8 MB in a real run
 * that ended on a rise while the lowest points rose 2 MB. What a leak raises is the floor, the RSS after the
 * collections. So the verdict fits a line to the floor: at each second of the second half, the lowest RSS within
 * ±25 s (wider than a cycle), and calls it growing when that line rises more than max(5 MB, 2% of the RSS
 * midway). The raw line is reported beside it.
 */
import type autocannon from 'autocannon';
import { runLoad } from './load.js';
import { rssMb } from './servers.js';
import { judgeGrowth } from './growth.js';

export interface SoakResult {
  seconds: number;
  intervalSeconds: number;
  rps: number;
  errors: number;
  failures: string[];
  /** One sample per second. */
  samples: Array<{ t: number; rssMb: number }>;
  /** The floor (lowest RSS within ±25 s) every 25 s of the second half, in order. */
  lastHalfFloorsMb: number[];
  endRssMb: number | undefined;
  /** The rise of the line fitted to the floor over the second half, in MB (the verdict's measure). */
  lastHalfGrowthMb: number;
  slopeMbPerMinute: number;
  growing: boolean;
  /** The rise of a line fitted to the raw samples of the second half, in MB (moves with the GC sawtooth). */
  rawLineGrowthMb: number;
}

/** Runs the mix against `url` for `seconds`, sampling the RSS of `pid` every second and logging it every `intervalSeconds`. */
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
  let logged = -Infinity;
  const sample = () => {
    const rss = rssMb(o.pid);
    const t = Math.round((Date.now() - started) / 1000);
    if (rss !== undefined) samples.push({ t, rssMb: rss });
    if (t - logged >= o.intervalSeconds) {
      logged = t;
      o.log(`  soak t=${t}s rss=${rss ?? '?'} MB`);
    }
  };
  sample();
  const timer = setInterval(sample, 1000);
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
