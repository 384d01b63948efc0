/**
 * limits.client_idle_timeout: a client session with nothing in flight for the
 * timeout is closed (the session answers FATAL 57P05 / MySQL 1159 and gives its
 * backend connections back).
 *
 * One sweeper serves every session of the process instead of a timer per
 * session: a session only stamps its last activity (one clock read per socket
 * chunk, no timer re-arming on the hot path), and the sweeper looks at all of
 * them every `periodMs`. So a session is closed between `timeout` and
 * `timeout + periodMs` after it fell idle. The timeout is read on every sweep,
 * so a config reload applies to sessions already open, including ones opened
 * while it was 0.
 */

export interface IdleWatched {
  /** The current limits.client_idle_timeout in ms; 0 = none. */
  timeoutMs(): number;
  /** True while nothing is in flight: no batch queued, being routed, running or being answered. */
  isIdle(): boolean;
  /** Called at most once, when the session has been idle for timeoutMs; the watch ends with it. */
  expire(idleMs: number): void;
}

export interface IdleHandle {
  /** Activity (client or server bytes): the idle period starts again. */
  touch(): void;
  /** The session ended: stop watching it. */
  stop(): void;
}

/** One watched session; it is its own handle (one object per session, no closures). */
class Entry implements IdleHandle {
  constructor(
    private readonly sweeper: IdleSweeper,
    readonly watched: IdleWatched,
    public last: number,
  ) {}

  touch(): void {
    this.last = this.sweeper.now();
  }

  stop(): void {
    this.sweeper.remove(this);
  }
}

/** Default sweep period: bounds how late (at most) an idle session is closed. */
export const IDLE_SWEEP_PERIOD_MS = 250;

export class IdleSweeper {
  private readonly entries = new Set<Entry>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly periodMs = IDLE_SWEEP_PERIOD_MS,
    private readonly clock: () => number = () => performance.now(),
    /** Tests drive sweep() themselves. */
    private readonly autoStart = true,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The sweeper's clock (sessions stamp their activity with it). */
  now(): number {
    return this.clock();
  }

  watch(watched: IdleWatched): IdleHandle {
    const entry = new Entry(this, watched, this.clock());
    this.entries.add(entry);
    if (this.autoStart && !this.timer) {
      this.timer = setInterval(() => this.sweep(), this.periodMs);
      // Idle sessions are no reason to keep the process alive at shutdown.
      this.timer.unref();
    }
    return entry;
  }

  /**
   * One pass: 1. a session with no timeout is skipped; 2. a busy one (a long
   * query, a slow COPY) starts its idle period now, since time spent waiting
   * for its own answer is not idleness; 3. one idle for its timeout expires.
   */
  sweep(): void {
    const now = this.clock();
    for (const entry of [...this.entries]) {
      const timeout = entry.watched.timeoutMs();
      if (!(timeout > 0)) continue;
      if (!entry.watched.isIdle()) {
        entry.last = now;
        continue;
      }
      const idle = now - entry.last;
      if (idle < timeout) continue;
      this.remove(entry);
      entry.watched.expire(Math.round(idle));
    }
  }

  /** Stops watching `entry` (Entry.stop, or expiry). */
  remove(entry: Entry): void {
    this.entries.delete(entry);
    if (this.entries.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}

/** The process's sweeper, shared by every frontend session. */
export const idleSweeper = new IdleSweeper();
