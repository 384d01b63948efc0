/**
 * Read-your-writes (routing.consistency: causal), independent of the protocol.
 *
 * Design (docs/routing.md): nothing is added to a write. At the ReadyForQuery
 * that ends a write on the primary the session only records the time. Its
 * next read asks for the primary's position from a monitor round that started
 * after that time: that position includes the commit, so a replica that has
 * replayed it has the write. Until such a round exists (at most one
 * health.interval) the session's reads go to the primary.
 */

/** Larger than any real position: no replica has replayed it, so the read goes to the primary. */
export const ON_PRIMARY = (1n << 64n) - 1n;

/** The part of a topology snapshot the tracker reads. */
export interface PositionView {
  readonly primary: string | null;
  /** When the round that read the positions started (ms, same clock as `now` below). */
  readonly sampledAt?: number;
  readonly nodes: readonly { readonly name: string; readonly replayPosition: bigint | null }[];
}

export class CausalTracker {
  constructor(private readonly clock: () => number = Date.now) {}

  /** A write batch is under way on the primary. */
  private writing = false;
  /** A write ended at this time and its position is not known yet. */
  private pendingSince: number | null = null;
  /** The position every later read must see. */
  private position: bigint | null = null;

  /** 1. A batch starts; `write` when it is routed to the primary as a write. */
  begin(write: boolean): void {
    if (write) this.writing = true;
  }

  /** 2. ReadyForQuery outside a transaction: a write that was under way has committed (or failed: harmless). */
  settle(): void {
    if (!this.writing) return;
    this.writing = false;
    this.pendingSince = this.clock();
  }

  /** 3. The position a read must find on a replica, ON_PRIMARY while it is not known yet, null when none. */
  required(view: PositionView): bigint | null {
    if (this.pendingSince !== null) {
      const pos = view.primary ? view.nodes.find((n) => n.name === view.primary)?.replayPosition : null;
      // Strictly later: a round that started in the same millisecond may have read the position before the commit.
      if (view.sampledAt === undefined || view.sampledAt <= this.pendingSince || pos === null || pos === undefined) return ON_PRIMARY;
      this.position = this.position !== null && this.position > pos ? this.position : pos;
      this.pendingSince = null;
    }
    return this.position;
  }
}

const trackers = new WeakMap<object, CausalTracker>();

/** The tracker of one client session (kept outside the session class so wiring it in stays a two-line change). */
export function causalOf(session: object): CausalTracker {
  let t = trackers.get(session);
  if (!t) {
    t = new CausalTracker();
    trackers.set(session, t);
  }
  return t;
}
