/**
 * Rate limiting: a token bucket per actor (the token's subject, else the client address), refilled continuously at
 * RATE_LIMIT_POINTS_PER_MINUTE and holding at most that many points. Each operation takes its estimated cost.
 */
import { AppError } from '../errors.js';

interface Bucket {
  points: number;
  updatedAt: number;
}

/** Buckets kept at most; beyond it the longest-idle ones go first (a full bucket is the same as a new one). */
const MAX_BUCKETS = 100_000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  /** @param pointsPerMinute capacity and refill per minute; 0 turns the limiter off. */
  constructor(private readonly pointsPerMinute: number) {
    this.perMs = pointsPerMinute / 60_000;
  }

  get enabled(): boolean {
    return this.pointsPerMinute > 0;
  }

  /**
   * Takes `cost` points from `key`'s bucket.
   *
   * @throws AppError RATE_LIMITED (HTTP 429, `Retry-After` in seconds) when the bucket holds fewer points.
   */
  take(key: string, cost: number, now = Date.now()): void {
    if (!this.enabled) return;
    const bucket = this.refill(key, now);
    const needed = Math.min(Math.max(cost, 1), this.pointsPerMinute);
    if (bucket.points >= needed) {
      bucket.points -= needed;
      return;
    }
    const retryAfter = Math.max(1, Math.ceil((needed - bucket.points) / this.perMs / 1000));
    throw new AppError(
      'RATE_LIMITED',
      `Too many requests: this operation costs ${needed} points and ${Math.floor(bucket.points)} are left; retry in ${retryAfter} s`,
      { retryAfterSeconds: retryAfter, cost: needed },
      { status: 429, headers: new Map([['retry-after', String(retryAfter)]]) },
    );
  }

  private refill(key: string, now: number): Bucket {
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key); // re-inserted below: the Map's order is then least recently used first
      bucket.points = Math.min(this.pointsPerMinute, bucket.points + (now - bucket.updatedAt) * this.perMs);
      bucket.updatedAt = now;
    } else {
      bucket = { points: this.pointsPerMinute, updatedAt: now };
      if (this.buckets.size >= MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value as string);
    }
    this.buckets.set(key, bucket);
    return bucket;
  }
}
