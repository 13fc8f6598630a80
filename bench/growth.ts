/**
 * The soak's verdict on RSS samples (see bench/soak.ts): a line fitted to the floor of the second half. Apart from
 * the soak so that it can be tested without a server or a load generator.
 */

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

/** Seconds each side of a sample over which its floor is the lowest RSS: more than half of a GC cycle. */
const FLOOR_HALF_WIDTH_S = 25;

/** Judges RSS samples (t in seconds, one a second) of a run of `seconds`. */
export function judgeGrowth(samples: ReadonlyArray<{ t: number; rssMb: number }>, seconds: number) {
  const half = samples.filter((s) => s.t >= seconds / 2);
  const end = samples.at(-1)?.t ?? 0;
  // Only where the whole window fits: a window cut short by the end of the run may miss the cycle's low point.
  const floor = half
    .filter((s) => s.t + FLOOR_HALF_WIDTH_S <= end)
    .map((s) => ({ x: s.t, y: Math.min(...samples.filter((o) => Math.abs(o.t - s.t) <= FLOOR_HALF_WIDTH_S).map((o) => o.rssMb)) }));
  const perSecond = slope(floor);
  const growth = perSecond * (seconds / 2);
  const mid = half[0]?.rssMb ?? 0;
  return {
    lastHalfGrowthMb: growth,
    slopeMbPerMinute: perSecond * 60,
    growing: growth > Math.max(5, 0.02 * mid),
    rawLineGrowthMb: slope(half.map((s) => ({ x: s.t, y: s.rssMb }))) * (seconds / 2),
    // Every 25th point (one a second): by position, so an odd run length (a half at t = 150.5) still shows them.
    lastHalfFloorsMb: floor.filter((_, i) => i % FLOOR_HALF_WIDTH_S === 0).map((p) => p.y),
  };
}
