/**
 * The soak's verdict (bench/growth.ts judgeGrowth) on RSS series shaped like the real ones: a heap that fills and is
 * collected every ~40 s, sampled every second. A flat sawtooth is not growth wherever the run ends in its cycle;
 * the same sawtooth over a slow leak is.
 */
import { describe, expect, it } from 'vitest';
import { judgeGrowth } from '../../bench/growth.js';

/** RSS every second for `seconds`: a floor of 240 MB, +45 MB of heap filling over each `period` s, plus `leakMbPerS`. */
function sawtooth(seconds: number, period: number, leakMbPerS: number, phase = 0): Array<{ t: number; rssMb: number }> {
  return Array.from({ length: seconds + 1 }, (_, t) => ({ t, rssMb: 240 + 45 * (((t + phase) % period) / period) + leakMbPerS * t }));
}

describe('soak verdict', () => {
  it('calls a flat sawtooth not growing, whatever point of its cycle the run ends on', () => {
    for (let phase = 0; phase < 40; phase += 5) {
      const v = judgeGrowth(sawtooth(300, 40, 0, phase), 300);
      expect(v.growing, `phase ${phase}: ${v.lastHalfGrowthMb.toFixed(1)} MB`).toBe(false);
      expect(v.lastHalfFloorsMb.length).toBeGreaterThanOrEqual(5);
      expect(Math.max(...v.lastHalfFloorsMb) - Math.min(...v.lastHalfFloorsMb)).toBeLessThan(1);
      // The raw line moves with where the run stopped in its cycle; the verdict does not rest on it.
      expect(Math.abs(v.rawLineGrowthMb)).toBeLessThan(10);
    }
  });

  it('calls the same sawtooth over a leak of 4 MB a minute growing, and its floors show the leak', () => {
    const v = judgeGrowth(sawtooth(300, 40, 4 / 60, 17), 300);
    expect(v.growing).toBe(true);
    expect(v.lastHalfGrowthMb).toBeGreaterThan(9);
    expect(v.lastHalfGrowthMb).toBeLessThan(11);
    const floors = v.lastHalfFloorsMb;
    expect(floors.at(-1)! - floors[0]!).toBeGreaterThan(6);
  });

  it('judges only the second half: growth while warming up is not a leak', () => {
    const warming = sawtooth(300, 40, 0, 3).map((s) => ({ ...s, rssMb: s.rssMb + (s.t < 150 ? s.t * 0.5 - 75 : 0) }));
    expect(judgeGrowth(warming, 300).growing).toBe(false);
  });
});
