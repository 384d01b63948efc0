import { ErrorCodes, SwitchyardError, isSwitchyardError } from '../errors.js';

export interface PoolFactory<C> {
  create(signal: AbortSignal): Promise<C>;
  destroy(conn: C): void;
}

export interface PoolOptions {
  size: number;
  minIdle: number;
  acquireTimeoutMs: number;
  idleTimeoutMs: number;
  name?: string;
}

export interface PoolStats {
  active: number;
  idle: number;
  waiting: number;
  connecting: number;
  total: number;
}

interface Waiter<C> {
  resolve(conn: C): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  prefer?: (c: C) => boolean;
}

interface IdleEntry<C> {
  conn: C;
  since: number;
}

/**
 * An async pool of at most `size` connections. Idle connections are handed out
 * LIFO (the warmest first); waiters are served FIFO and time out after
 * acquireTimeoutMs with POOL_TIMEOUT. A connection is either idle, lent out
 * (active) or being created (connecting); never two at once.
 */
export class Pool<C> {
  private idle: IdleEntry<C>[] = [];
  private readonly active = new Set<C>();
  private connecting = 0;
  private waiters: Waiter<C>[] = [];
  private closed = false;
  private draining = false;
  private readonly reaper: NodeJS.Timeout;
  private readonly abort = new AbortController();

  constructor(
    private readonly factory: PoolFactory<C>,
    private opts: PoolOptions,
    private readonly clock: { now(): number } = Date,
  ) {
    this.reaper = setInterval(() => this.reapIdle(), Math.max(1000, Math.min(opts.idleTimeoutMs, 30_000)));
    this.reaper.unref();
  }

  get name(): string {
    return this.opts.name ?? 'pool';
  }

  stats(): PoolStats {
    const total = this.idle.length + this.active.size + this.connecting;
    return { active: this.active.size, idle: this.idle.length, waiting: this.waiters.length, connecting: this.connecting, total };
  }

  acquire(opts: { prefer?: (c: C) => boolean; signal?: AbortSignal } = {}): Promise<C> {
    if (this.closed || this.draining) return Promise.reject(new SwitchyardError(ErrorCodes.POOL_CLOSED, `pool ${this.name} is closed`));
    // 1. An idle connection, preferring one that matches.
    const conn = this.takeIdle(opts.prefer);
    if (conn !== undefined) return Promise.resolve(conn);
    // 2. Room for a new one.
    if (this.idle.length + this.active.size + this.connecting < this.opts.size) return this.create();
    // 3. Wait in line.
    return new Promise<C>((resolve, reject) => {
      const waiter: Waiter<C> = {
        resolve,
        reject,
        prefer: opts.prefer,
        timer: setTimeout(() => {
          this.removeWaiter(waiter);
          reject(
            new SwitchyardError(
              ErrorCodes.POOL_TIMEOUT,
              `no connection available in pool ${this.name} (size ${this.opts.size}, all busy) within ${this.opts.acquireTimeoutMs}ms`,
            ),
          );
        }, this.opts.acquireTimeoutMs),
      };
      waiter.timer.unref?.();
      opts.signal?.addEventListener('abort', () => {
        if (this.removeWaiter(waiter)) {
          clearTimeout(waiter.timer);
          reject(new SwitchyardError(ErrorCodes.POOL_CLOSED, 'acquire aborted'));
        }
      });
      this.waiters.push(waiter);
    });
  }

  /** Back to idle, or straight to the next waiter. Releasing twice is a no-op. */
  release(conn: C): void {
    if (!this.active.delete(conn)) return;
    if (this.closed || this.draining) {
      this.factory.destroy(conn);
      this.checkDrained();
      return;
    }
    if (this.active.size + this.idle.length + this.connecting > this.opts.size) {
      // The pool shrank (reload): this connection is over the new size.
      this.factory.destroy(conn);
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      this.active.add(conn);
      waiter.resolve(conn);
      return;
    }
    this.idle.push({ conn, since: this.clock.now() });
  }

  /** A broken connection: destroyed, its slot freed (a waiter may get a new one). */
  discard(conn: C): void {
    let known = this.active.delete(conn);
    const i = this.idle.findIndex((e) => e.conn === conn);
    if (i >= 0) {
      this.idle.splice(i, 1);
      known = true;
    }
    if (!known) return;
    this.factory.destroy(conn);
    this.checkDrained();
    this.serveWaiterWithNewConnection();
  }

  resize(opts: Partial<PoolOptions>): void {
    this.opts = { ...this.opts, ...opts };
    // Trim idle connections above the new size; active ones are trimmed on release.
    while (this.idle.length > 0 && this.idle.length + this.active.size + this.connecting > this.opts.size) {
      this.factory.destroy(this.idle.shift()!.conn);
    }
    // A larger pool can serve waiters now.
    while (this.waiters.length > 0 && this.idle.length + this.active.size + this.connecting < this.opts.size) this.serveWaiterWithNewConnection();
  }

  /** Stop lending; resolves when every lent connection came back (and was destroyed). */
  drain(): Promise<void> {
    this.draining = true;
    for (const e of this.idle.splice(0)) this.factory.destroy(e.conn);
    this.rejectWaiters();
    clearInterval(this.reaper);
    return new Promise((resolve) => {
      this.onDrained = resolve;
      this.checkDrained();
    });
  }

  /** Destroy idle connections now, refuse waiters; lent ones are destroyed when released. */
  close(): void {
    this.closed = true;
    this.abort.abort();
    clearInterval(this.reaper);
    for (const e of this.idle.splice(0)) this.factory.destroy(e.conn);
    this.rejectWaiters();
  }

  private onDrained: (() => void) | null = null;

  private checkDrained(): void {
    if (this.onDrained && this.active.size === 0 && this.connecting === 0) {
      const done = this.onDrained;
      this.onDrained = null;
      done();
    }
  }

  private rejectWaiters(): void {
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new SwitchyardError(ErrorCodes.POOL_CLOSED, `pool ${this.name} is closed`));
    }
  }

  private takeIdle(prefer?: (c: C) => boolean): C | undefined {
    if (this.idle.length === 0) return undefined;
    let index = this.idle.length - 1;
    if (prefer) {
      for (let i = this.idle.length - 1; i >= 0; i--) {
        if (prefer(this.idle[i]!.conn)) {
          index = i;
          break;
        }
      }
    }
    const [entry] = this.idle.splice(index, 1);
    this.active.add(entry!.conn);
    return entry!.conn;
  }

  private async create(): Promise<C> {
    this.connecting++;
    let conn: C;
    try {
      conn = await this.factory.create(this.abort.signal);
    } catch (e) {
      this.connecting--;
      this.checkDrained();
      // The slot is free again: the next waiter makes its own attempt instead of timing out.
      this.serveWaiterWithNewConnection();
      throw isSwitchyardError(e) ? e : new SwitchyardError(ErrorCodes.BACKEND_CONNECT_FAILED, (e as Error).message, { cause: e });
    }
    this.connecting--;
    if (this.closed || this.draining) {
      this.factory.destroy(conn);
      this.checkDrained();
      throw new SwitchyardError(ErrorCodes.POOL_CLOSED, `pool ${this.name} is closed`);
    }
    this.active.add(conn);
    return conn;
  }

  /** A slot freed up while clients wait: start a connection for the first waiter. */
  private serveWaiterWithNewConnection(): void {
    if (this.closed || this.draining || this.waiters.length === 0) return;
    if (this.idle.length + this.active.size + this.connecting >= this.opts.size) return;
    const waiter = this.waiters.shift()!;
    clearTimeout(waiter.timer);
    this.create().then(waiter.resolve, waiter.reject);
  }

  private reapIdle(): void {
    const cutoff = this.clock.now() - this.opts.idleTimeoutMs;
    // Oldest first; keep minIdle.
    while (this.idle.length > this.opts.minIdle && this.idle[0]!.since < cutoff) {
      this.factory.destroy(this.idle.shift()!.conn);
    }
  }

  private removeWaiter(w: Waiter<C>): boolean {
    const i = this.waiters.indexOf(w);
    if (i < 0) return false;
    this.waiters.splice(i, 1);
    return true;
  }
}
