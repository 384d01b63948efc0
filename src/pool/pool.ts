import { ErrorCodes, SwitchyardError, isSwitchyardError } from '../errors.js';

export interface PoolFactory<C> {
  /** Open one connection; `signal` aborts when the pool closes. */
  create(signal: AbortSignal): Promise<C>;
  destroy(conn: C): void;
}

export interface PoolOptions {
  size: number;
  minIdle: number;
  acquireTimeoutMs: number;
  /** Idle connections older than this are closed (down to minIdle); 0 = never. */
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

export interface AcquireOptions<C> {
  /** Among idle connections, take the newest one this accepts (else the newest). */
  prefer?: (c: C) => boolean;
  /** Aborting gives up the wait; a connection created meanwhile stays in the pool. */
  signal?: AbortSignal;
}

interface Waiter<C> {
  resolve(conn: C): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  signal?: AbortSignal;
  onAbort?: () => void;
}

interface IdleEntry<C> {
  conn: C;
  since: number;
}

/**
 * An async pool of at most `size` connections. Each connection is in exactly
 * one state: idle, lent out (active) or being created (connecting), so none is
 * ever lent twice. Idle connections are handed out LIFO (the warmest first, so
 * the cold ones age out); waiters are served FIFO and give up after
 * acquireTimeoutMs with POOL_TIMEOUT. While anyone waits there is no idle
 * connection: a released one goes straight to the first waiter.
 */
export class Pool<C> {
  private readonly idle: IdleEntry<C>[] = [];
  private readonly active = new Set<C>();
  /** Lent to a waiter during the current synchronous run (see handOff). */
  private readonly justHandedOff = new Set<C>();
  private connecting = 0;
  private readonly waiters: Waiter<C>[] = [];
  private closed = false;
  private draining: Promise<void> | null = null;
  private onDrained: (() => void) | null = null;
  private reaper: NodeJS.Timeout | null = null;
  /** Aborts creates in flight when the pool closes. */
  private readonly lifetime = new AbortController();
  /**
   * Lent connections their holder keeps only as a courtesy (a MySQL session's
   * linger), each with the holder's way to give it back; oldest first.
   */
  private readonly lingerers = new Map<C, () => void>();

  constructor(
    private readonly factory: PoolFactory<C>,
    private opts: PoolOptions,
    private readonly clock: { now(): number } = Date,
  ) {
    this.startReaper();
  }

  get name(): string {
    return this.opts.name ?? 'pool';
  }

  stats(): PoolStats {
    return { active: this.active.size, idle: this.idle.length, waiting: this.waiters.length, connecting: this.connecting, total: this.total() };
  }

  acquire(opts: AcquireOptions<C> = {}): Promise<C> {
    if (this.closed || this.draining) return Promise.reject(this.closedError());
    if (opts.signal?.aborted) return Promise.reject(this.abortedError(opts.signal));
    // 1. An idle connection, preferring one that matches.
    const conn = this.takeIdle(opts.prefer);
    if (conn !== undefined) return Promise.resolve(conn);
    // 2. Room for a new one.
    if (this.total() < this.opts.size) return this.create(opts.signal);
    // 3. Wait in line, and ask a lingering holder to give its connection back.
    const waiting = this.enqueue(opts.signal);
    this.reclaimOne();
    return waiting;
  }

  /**
   * `conn` (lent) is kept only in case its holder's next command needs it:
   * `giveBack` is called (once) when someone has to wait for a connection of
   * this pool, and must release (or discard) it soon. Returns false, and
   * registers nothing, if someone waits already: give it back now.
   */
  linger(conn: C, giveBack: () => void): boolean {
    if (this.waiters.length > 0 || !this.active.has(conn)) return false;
    this.lingerers.set(conn, giveBack);
    return true;
  }

  /** The holder keeps `conn` for real again (or is giving it back itself). */
  unlinger(conn: C): void {
    this.lingerers.delete(conn);
  }

  private reclaimOne(): void {
    if (this.lingerers.size === 0) return;
    const [conn, giveBack] = this.lingerers.entries().next().value as [C, () => void];
    this.lingerers.delete(conn);
    giveBack();
  }

  /**
   * An idle connection now, without a promise, or undefined (then use acquire):
   * the common case of a busy pool costs no microtask hop.
   */
  tryAcquire(prefer?: (c: C) => boolean): C | undefined {
    if (this.closed || this.draining) return undefined;
    return this.takeIdle(prefer);
  }

  /**
   * Back to idle, or straight to the first waiter. Releasing twice (or after
   * discard) is a no-op, also when the first release handed the connection
   * straight to a waiter. A release that comes after the connection was lent
   * to someone else cannot be told from theirs: holders must release once.
   */
  release(conn: C): void {
    if (this.justHandedOff.has(conn) || !this.active.delete(conn)) return;
    if (this.lingerers.size !== 0) this.lingerers.delete(conn);
    if (this.closed || this.draining) {
      this.factory.destroy(conn);
      this.checkDrained();
      return;
    }
    if (this.total() >= this.opts.size) {
      // The pool shrank (hot reload) while this one was lent out: it is over the new size.
      this.factory.destroy(conn);
      return;
    }
    this.handOff(conn);
  }

  /** A broken connection: destroyed and its slot freed, so a waiter may get a new one. */
  discard(conn: C): void {
    // Just lent to a waiter: this is the previous holder's late word, not the new holder's.
    if (this.justHandedOff.has(conn)) return;
    let known = this.active.delete(conn);
    if (this.lingerers.size !== 0) this.lingerers.delete(conn);
    const i = this.idle.findIndex((e) => e.conn === conn);
    if (i >= 0) {
      this.idle.splice(i, 1);
      known = true;
    }
    if (!known) return;
    this.factory.destroy(conn);
    this.checkDrained();
    this.serveWaitersWithNewConnections();
  }

  /** Hot reload: new limits apply now; lent connections over a smaller size close when released. */
  resize(opts: Partial<PoolOptions>): void {
    const reaperChanged = opts.idleTimeoutMs !== undefined && opts.idleTimeoutMs !== this.opts.idleTimeoutMs;
    this.opts = { ...this.opts, ...opts };
    // 1. Close idle connections over the new size, oldest first.
    while (this.idle.length > 0 && this.total() > this.opts.size) this.factory.destroy(this.idle.shift()!.conn);
    // 2. A larger pool can serve waiters now.
    this.serveWaitersWithNewConnections();
    // 3. The reaper's period follows the idle timeout.
    if (reaperChanged && !this.closed && !this.draining) this.startReaper();
  }

  /** Stop lending; resolves once every lent or connecting connection is back and destroyed. */
  drain(): Promise<void> {
    if (this.draining) return this.draining;
    this.stopReaper();
    this.draining = new Promise<void>((resolve) => {
      this.onDrained = resolve;
    });
    for (const e of this.idle.splice(0)) this.factory.destroy(e.conn);
    this.rejectWaiters();
    this.checkDrained();
    return this.draining;
  }

  /** Destroy idle connections now, abort creates, reject waiters; lent ones are destroyed when released. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopReaper();
    this.lifetime.abort();
    for (const e of this.idle.splice(0)) this.factory.destroy(e.conn);
    this.rejectWaiters();
  }

  private total(): number {
    return this.idle.length + this.active.size + this.connecting;
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

  /** A connection that is ours and free: to the first waiter, else idle. */
  private handOff(conn: C): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      this.forget(waiter);
      this.active.add(conn);
      // Until the waiter can run, any further release of this connection is the
      // previous holder's duplicate. The guard clears in a microtask queued
      // before the waiter's continuation, so the new holder's release counts.
      this.justHandedOff.add(conn);
      queueMicrotask(() => this.justHandedOff.delete(conn));
      waiter.resolve(conn);
      return;
    }
    this.idle.push({ conn, since: this.clock.now() });
  }

  private enqueue(signal: AbortSignal | undefined): Promise<C> {
    return new Promise<C>((resolve, reject) => {
      const waiter: Waiter<C> = {
        resolve,
        reject,
        signal,
        timer: setTimeout(() => {
          if (!this.removeWaiter(waiter)) return;
          this.forget(waiter);
          reject(
            new SwitchyardError(
              ErrorCodes.POOL_TIMEOUT,
              `no connection available in pool ${this.name} (size ${this.opts.size}, all in use) after waiting ${this.opts.acquireTimeoutMs}ms`,
            ),
          );
        }, this.opts.acquireTimeoutMs),
      };
      // Waiting clients are not a reason to keep the process alive at shutdown.
      waiter.timer.unref();
      if (signal) {
        waiter.onAbort = () => {
          if (!this.removeWaiter(waiter)) return;
          this.forget(waiter);
          reject(this.abortedError(signal));
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiters.push(waiter);
    });
  }

  /** 1. take a slot, 2. create, 3. give the connection to the requester (or back, if it gave up). */
  private async create(signal: AbortSignal | undefined): Promise<C> {
    this.connecting++;
    let conn: C;
    try {
      conn = await this.factory.create(this.lifetime.signal);
    } catch (e) {
      this.connecting--;
      this.checkDrained();
      // The slot is free again: the next waiter makes its own attempt instead of timing out.
      this.serveWaitersWithNewConnections();
      if (this.closed && !isSwitchyardError(e)) throw this.closedError();
      throw isSwitchyardError(e)
        ? e
        : new SwitchyardError(ErrorCodes.BACKEND_CONNECT_FAILED, `pool ${this.name}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    this.connecting--;
    if (this.closed || this.draining) {
      this.factory.destroy(conn);
      this.checkDrained();
      throw this.closedError();
    }
    this.active.add(conn);
    if (signal?.aborted) {
      // Nobody wants it any more; it is healthy, so the pool keeps it.
      this.release(conn);
      throw this.abortedError(signal);
    }
    return conn;
  }

  /** Slots are free while clients wait: start a connection for each waiter that fits. */
  private serveWaitersWithNewConnections(): void {
    if (this.closed || this.draining) return;
    while (this.waiters.length > 0 && this.total() < this.opts.size) {
      const waiter = this.waiters.shift()!;
      this.forget(waiter);
      this.create(waiter.signal).then(waiter.resolve, waiter.reject);
    }
  }

  private checkDrained(): void {
    if (this.onDrained && this.active.size === 0 && this.connecting === 0) {
      const done = this.onDrained;
      this.onDrained = null;
      done();
    }
  }

  private rejectWaiters(): void {
    for (const w of this.waiters.splice(0)) {
      this.forget(w);
      w.reject(this.closedError());
    }
  }

  private removeWaiter(w: Waiter<C>): boolean {
    const i = this.waiters.indexOf(w);
    if (i < 0) return false;
    this.waiters.splice(i, 1);
    return true;
  }

  /** A waiter left the queue: drop its timer and abort listener. */
  private forget(w: Waiter<C>): void {
    clearTimeout(w.timer);
    if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
  }

  private startReaper(): void {
    this.stopReaper();
    if (!(this.opts.idleTimeoutMs > 0)) return;
    // Checking at half the timeout keeps a connection's extra idle life under half the timeout.
    const period = Math.min(30_000, Math.max(250, this.opts.idleTimeoutMs / 2));
    this.reaper = setInterval(() => this.reapIdle(), period);
    this.reaper.unref();
  }

  private stopReaper(): void {
    if (this.reaper) clearInterval(this.reaper);
    this.reaper = null;
  }

  /** Close idle connections past idleTimeoutMs, oldest first, keeping minIdle. */
  private reapIdle(): void {
    if (!(this.opts.idleTimeoutMs > 0)) return;
    const cutoff = this.clock.now() - this.opts.idleTimeoutMs;
    // idle is in release order, so the oldest are at the front.
    while (this.idle.length > this.opts.minIdle && this.idle[0]!.since <= cutoff) this.factory.destroy(this.idle.shift()!.conn);
  }

  private closedError(): SwitchyardError {
    return new SwitchyardError(ErrorCodes.POOL_CLOSED, `pool ${this.name} is closed`);
  }

  private abortedError(signal: AbortSignal): SwitchyardError {
    if (isSwitchyardError(signal.reason)) return signal.reason;
    return new SwitchyardError(ErrorCodes.POOL_CLOSED, `acquire from pool ${this.name} was aborted`, { cause: signal.reason });
  }
}
