/**
 * One subscriber's stream of events: an async iterator that merges a replay from the feed with the live events the
 * hub offers, by position, so nothing is skipped and nothing comes twice.
 *
 * The stream is either live (the hub's events are queued, at most `queueLimit` of them) or catching up (it reads
 * the feed itself past its position, a page at a time, as fast as its consumer takes events). It starts catching
 * up when it is given an `after` cursor, and falls back to catching up when its queue overflows: a slow consumer
 * costs a page of memory and some reads, never an unbounded queue, and it still misses nothing.
 *
 * Why the merge is exact: before each catch-up read the stream empties its queue and starts queueing live events
 * again; the read sees every event settled by then, which includes everything the hub delivered earlier (the hub
 * only delivers settled events), and the queue holds everything delivered later. Events at or before the position
 * are dropped as duplicates.
 *
 * A hand-written iterator rather than an async generator: `return()` (client unsubscribes, socket closes) must end
 * a stream that is waiting for an event at once, and a generator suspended at an `await` would wait for it.
 */
import type { TaskEvent } from '../events/event.entity.js';
import { isAfter, matches, positionOf, type EventFilter, type FeedPosition } from '../events/feed.position.js';

/** What a stream needs from the hub. */
export interface StreamSource {
  /** Settled events after `position` that match `filter`, at most `limit`. */
  read(position: FeedPosition, filter: EventFilter, limit: number): Promise<TaskEvent[]>;
  /** The stream ended: stop offering it events. */
  release(stream: EventStream): void;
}

export interface StreamOptions {
  filter: EventFilter;
  /** Start after this position. */
  position: FeedPosition;
  /** Replay from the feed first (a client's `after`); else the stream is live from `position` (the hub's "now"). */
  replay: boolean;
  /** Events queued at most before the stream falls back to catching up. */
  queueLimit: number;
  /** Events per catch-up read. */
  pageSize: number;
  /** Called before each event is handed out (the subscription refreshes its per-event context). */
  beforeEach?: () => void;
}

export class EventStream implements AsyncIterableIterator<TaskEvent> {
  private position: FeedPosition;
  private queue: TaskEvent[] = [];
  /** Events read from the feed, handed out before anything else. */
  private page: TaskEvent[] = [];
  private catchingUp: boolean;
  private ended = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly source: StreamSource,
    private readonly options: StreamOptions,
  ) {
    this.position = options.position;
    this.catchingUp = options.replay;
  }

  /** Whether the stream is live (queueing the hub's events) or reading the feed itself. */
  get mode(): 'live' | 'catching-up' {
    return this.catchingUp ? 'catching-up' : 'live';
  }

  /** The hub offers each settled event once, in feed order. */
  offer(event: TaskEvent, position: FeedPosition): void {
    if (this.ended || this.catchingUp || !isAfter(position, this.position) || !matches(event, this.options.filter)) return;
    if (this.queue.length >= this.options.queueLimit) {
      // Too slow for the live stream: drop the queue and read the feed from the position instead.
      this.queue = [];
      this.catchingUp = true;
    } else {
      this.queue.push(event);
    }
    this.signal();
  }

  async next(): Promise<IteratorResult<TaskEvent>> {
    for (;;) {
      if (this.ended) return { done: true, value: undefined };
      const fromPage = this.page.shift();
      if (fromPage) return this.hand(fromPage);
      if (this.catchingUp) {
        await this.catchUp();
        continue;
      }
      const live = this.queue.shift();
      if (live) {
        if (isAfter(positionOf(live), this.position)) return this.hand(live);
        continue;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private hand(event: TaskEvent): IteratorResult<TaskEvent> {
    this.position = positionOf(event);
    this.options.beforeEach?.();
    return { done: false, value: event };
  }

  private async catchUp(): Promise<void> {
    // Queue live events from here on (see the module comment); the read below covers everything before.
    this.queue = [];
    this.catchingUp = false;
    const events = await this.source.read(this.position, this.options.filter, this.options.pageSize);
    if (this.ended) return;
    this.page = events;
    // A full page: there may be more; keep reading from the feed once this page is handed out.
    if (events.length === this.options.pageSize) {
      this.catchingUp = true;
      this.queue = [];
    }
  }

  private signal(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Ends the stream: a pending `next()` resolves done. */
  async return(): Promise<IteratorResult<TaskEvent>> {
    if (!this.ended) {
      this.ended = true;
      this.queue = [];
      this.page = [];
      this.source.release(this);
      this.signal();
    }
    return { done: true, value: undefined };
  }

  async throw(err?: unknown): Promise<IteratorResult<TaskEvent>> {
    await this.return();
    throw err;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
