/**
 * The instance's event hub: one reader of the change feed for all of its subscribers.
 *
 * Woken by the listener (a notification, a reconnect), by its own safety poll, and by a quick re-read while the
 * feed is held back, it reads the settled events past its position once and offers each to every stream. Reads
 * never overlap: a wake-up during a read makes the read go around once more.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from '../logger.js';
import type { TaskEvent } from '../events/event.entity.js';
import { FEED_START, isAfter, positionOf, type EventFilter, type FeedPosition } from '../events/feed.position.js';
import { readHead, readMatching, readSettled } from '../events/event.repository.js';
import { EventStream } from './stream.js';

export interface HubOptions {
  log: Logger;
  /** The slow safety poll: how stale events may get while the listener is down. */
  pollIntervalMs?: number;
  /** Events queued per subscriber before it falls back to reading the feed itself. */
  queueLimit?: number;
  /** Events per read of the hub (one read serves every subscriber). */
  pageSize?: number;
  /** Events per read of a stream that replays or catches up (each such stream holds one page). */
  streamPageSize?: number;
}

/**
 * Defaults: a poll every 5 s; pages of 500 events for the hub. Per stream, 100 queued events and pages of 100:
 * an event is usually well under 1 kB, but `changes` may carry two 64 KiB JSON objects, so a stream holds at most
 * about 25 MB in the worst case and typically tens of kB; a slower consumer costs reads, not memory.
 */
const DEFAULTS = { pollIntervalMs: 5000, queueLimit: 100, pageSize: 500, streamPageSize: 100 };
/**
 * While committed events wait behind a running transaction (in any database of the cluster: xmin is cluster-wide),
 * look again after 5 ms, doubling up to 100 ms: that transaction may end without a notification, and each step of
 * the backoff is added to the delivery latency. At most 10 cheap reads a second while the feed is held back.
 */
const HELD_BACK_FIRST_MS = 5;
const HELD_BACK_MAX_MS = 100;

/** What a subscriber asks for. */
export interface SubscribeRequest {
  filter: EventFilter;
  /** Replay after this position first; absent: start now. */
  after?: FeedPosition;
  beforeEach?: () => void;
}

export class EventHub {
  private readonly options: Required<Omit<HubOptions, 'log'>> & { log: Logger };
  private root: EntityManager | undefined;
  private position: FeedPosition = FEED_START;
  private readonly streams = new Set<EventStream>();
  private reading: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private poll: NodeJS.Timeout | undefined;
  private heldBack: NodeJS.Timeout | undefined;
  private heldBackDelay = HELD_BACK_FIRST_MS;
  /** Wake-ups were skipped while no stream was open: `position` may be behind the feed's head. */
  private behind = false;
  private catchingUp: Promise<void> | undefined;
  private held = false;
  /** Events offered to streams so far (for metrics). */
  delivered = 0;

  constructor(options: HubOptions) {
    this.options = { ...DEFAULTS, ...options };
  }

  /** Starts at the feed's head ("now") and begins the safety poll. */
  async start(root: EntityManager): Promise<void> {
    this.root = root;
    this.position = await readHead(root.fork());
    this.poll = setInterval(() => this.wake(), this.options.pollIntervalMs);
    this.poll.unref();
  }

  get started(): boolean {
    return this.root !== undefined && !this.stopped;
  }

  /** Did the last read find committed events waiting behind an older running transaction? */
  get holdingBack(): boolean {
    return this.held;
  }

  /** Open streams. */
  get active(): number {
    return this.streams.size;
  }

  /** Reads the feed now (or once more after the read in progress); with no stream open, only notes it is behind. */
  wake(): void {
    if (!this.root || this.stopped) return;
    // Nobody to deliver to: no feed read per write on an instance without subscribers. The next subscriber moves
    // the position to the head first.
    if (this.streams.size === 0) {
      this.behind = true;
      return;
    }
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = this.readLoop().finally(() => (this.reading = undefined));
  }

  private async readLoop(): Promise<void> {
    const root = this.root as EntityManager;
    do {
      this.again = false;
      try {
        for (;;) {
          const { events, heldBack } = await readSettled(root.fork(), this.position, this.options.pageSize);
          for (const event of events) this.offer(event);
          if (events.length === this.options.pageSize) continue;
          this.scheduleHeldBack(heldBack);
          break;
        }
      } catch (err) {
        // The database is failing: the next wake-up (a reconnect, the poll) tries again.
        if (!this.stopped) this.options.log.warn({ err }, 'reading the change feed for subscriptions failed; retrying on the next wake-up');
      }
    } while (this.again && !this.stopped);
  }

  private offer(event: TaskEvent): void {
    const position = positionOf(event);
    this.position = position;
    this.delivered++;
    for (const stream of this.streams) stream.offer(event, position);
  }

  private scheduleHeldBack(heldBack: boolean): void {
    clearTimeout(this.heldBack);
    this.held = heldBack;
    if (!heldBack || this.stopped) {
      this.heldBackDelay = HELD_BACK_FIRST_MS;
      return;
    }
    this.heldBack = setTimeout(() => this.wake(), this.heldBackDelay);
    this.heldBack.unref();
    this.heldBackDelay = Math.min(HELD_BACK_MAX_MS, this.heldBackDelay * 2);
  }

  /** Moves the position to the feed's head after wake-ups were skipped (never backwards: a read may be running). */
  private catchUp(root: EntityManager): Promise<void> {
    this.catchingUp ??= readHead(root.fork())
      .then((head) => {
        if (isAfter(head, this.position)) this.position = head;
        this.behind = false;
      })
      .finally(() => (this.catchingUp = undefined));
    return this.catchingUp;
  }

  /** Opens a stream: live from now (the feed's settled head), or a replay after `after` that turns live. */
  async subscribe(request: SubscribeRequest): Promise<EventStream> {
    const root = this.root;
    if (!root || this.stopped) throw new Error('the event hub is not running');
    if (this.behind) await this.catchUp(root);
    if (this.stopped) throw new Error('the event hub is not running');
    const stream = new EventStream(
      {
        read: (position, filter, limit) => readMatching(root.fork(), position, filter, limit),
        release: (s) => this.streams.delete(s),
      },
      {
        filter: request.filter,
        position: request.after ?? this.position,
        replay: request.after !== undefined,
        queueLimit: this.options.queueLimit,
        pageSize: this.options.streamPageSize,
        beforeEach: request.beforeEach,
      },
    );
    this.streams.add(stream);
    // A notification may have come (and been skipped) while this stream was being opened.
    this.wake();
    return stream;
  }

  /** Ends every stream and stops reading; waits for a read in progress (it holds a pooled connection). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.poll);
    clearTimeout(this.heldBack);
    await Promise.all([...this.streams].map((s) => s.return()));
    await this.reading;
  }
}
