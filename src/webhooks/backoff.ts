/**
 * When a failed delivery is tried again: exponential backoff with jitter between WEBHOOK_RETRY_MIN_MS and
 * WEBHOOK_RETRY_MAX_MS. The jitter spreads the retries of many webhooks that failed together (a receiver's outage)
 * so they do not all come back in the same instant.
 */

/** Jitter: each wait is the exponential step times a factor in [1 - JITTER, 1 + JITTER). */
const JITTER = 0.2;

/**
 * The wait before the next attempt after `attempts` failed ones: `min · 2^(attempts − 1)`, capped at `max`, with
 * ±20 % jitter, and never outside `[min, max]`.
 *
 * @param random a number in [0, 1) (tests pass a fixed one)
 */
export function retryDelayMs(attempts: number, minMs: number, maxMs: number, random: number = Math.random()): number {
  // 2^40 already exceeds any configured maximum; a larger exponent only risks Infinity.
  const step = Math.min(maxMs, minMs * 2 ** Math.min(40, Math.max(0, attempts - 1)));
  const jittered = step * (1 - JITTER + 2 * JITTER * random);
  return Math.round(Math.min(maxMs, Math.max(minMs, jittered)));
}
