import type { TopologySnapshot } from '../routing/topology.js';

/**
 * Holds a cluster's current topology snapshot. Monitors publish new immutable
 * snapshots; sessions read `current()` once per routing decision. Waiters let
 * a write wait (failover.write_hold) for a snapshot with a primary.
 */
export class TopologyHolder {
  private snap: TopologySnapshot;
  private waiters = new Set<() => void>();
  private readonly listeners = new Set<(snap: TopologySnapshot) => void>();

  constructor(initial: TopologySnapshot) {
    this.snap = initial;
  }

  current(): TopologySnapshot {
    return this.snap;
  }

  publish(next: TopologySnapshot): void {
    this.snap = next;
    const waiting = this.waiters;
    this.waiters = new Set();
    for (const w of waiting) w();
    for (const l of this.listeners) l(next);
  }

  /** Calls `fn` after every publish (after the waiters); returns the unsubscribe function. */
  onPublish(fn: (snap: TopologySnapshot) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Resolves with the first snapshot (current or later) that satisfies `ok`, or null after timeoutMs. */
  waitFor(ok: (s: TopologySnapshot) => boolean, timeoutMs: number): Promise<TopologySnapshot | null> {
    if (ok(this.snap)) return Promise.resolve(this.snap);
    return new Promise((resolve) => {
      const check = () => {
        if (ok(this.snap)) {
          clearTimeout(timer);
          resolve(this.snap);
        } else this.waiters.add(check);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        resolve(null);
      }, timeoutMs);
      timer.unref();
      this.waiters.add(check);
    });
  }
}
