import { SmoothWeightedBalancer } from './balancer.js';
import { replicaEligibility, type IneligibleReason, type LagBudget } from './eligibility.js';
import type { NodeState, TopologySnapshot } from './topology.js';

export type RouteReason =
  | 'classified'
  | 'hint'
  | 'transaction'
  | 'pinned'
  | 'causal'
  | 'lag_fallback'
  | 'no_replica'
  | 'read_only_listener'
  | 'primary_reads'
  | 'session';

export interface RouteInput {
  statement: { class: 'read' | 'write'; hints: { route?: 'primary' | 'replica'; maxLagMs?: number } };
  listener: 'rw' | 'ro';
  snapshot: TopologySnapshot;
  routing: {
    primary_reads: number;
    max_replica_lag: { bytes: number; time: number };
    when_no_replica: 'primary' | 'error';
    consistency: 'eventual' | 'causal';
  };
  session: {
    /** The session is pinned to this node (held transaction, temp table, ...). */
    pinnedNode?: string | null;
    /** The position of the session's last write (consistency: causal). */
    causalPosition?: bigint | null;
  };
}

export type RouteErrorCode = 'SWITCHYARD_NO_PRIMARY' | 'SWITCHYARD_SPLIT_BRAIN' | 'SWITCHYARD_NO_REPLICA';

export type RouteDecision =
  | { ok: true; node: string; target: 'primary' | 'replica'; reason: RouteReason }
  | { ok: false; error: RouteErrorCode; message: string };

/**
 * Decides where one statement goes, from the statement's class and hints, the
 * listener, the topology snapshot and the session. Pure apart from the
 * balancer's round-robin position. A write never goes to a replica on the
 * read/write listener, whatever the hints say.
 */
export class Router {
  constructor(private readonly balancer = new SmoothWeightedBalancer()) {}

  route(input: RouteInput): RouteDecision {
    const { statement, snapshot, session } = input;
    // 1. A pinned session stays where it is.
    if (session.pinnedNode) {
      const pinned = snapshot.nodes.find((n) => n.name === session.pinnedNode);
      return { ok: true, node: session.pinnedNode, target: pinned?.role === 'primary' ? 'primary' : 'replica', reason: 'pinned' };
    }
    // 2. The read-only listener sends everything to replicas.
    if (input.listener === 'ro') return this.read(input, 'read_only_listener');
    // 3. Writes go to the primary.
    if (statement.class === 'write') return this.primary(snapshot, 'classified');
    // 4. Reads: a primary hint, else a replica.
    if (statement.hints.route === 'primary') return this.primary(snapshot, 'hint');
    return this.read(input, statement.hints.route === 'replica' ? 'hint' : 'classified');
  }

  private primary(snapshot: TopologySnapshot, reason: RouteReason): RouteDecision {
    if (snapshot.splitBrain) {
      return { ok: false, error: 'SWITCHYARD_SPLIT_BRAIN', message: `cluster ${snapshot.cluster}: more than one writable node (split brain); writes are refused until it is resolved` };
    }
    if (!snapshot.primary) {
      return { ok: false, error: 'SWITCHYARD_NO_PRIMARY', message: `cluster ${snapshot.cluster}: no primary is available` };
    }
    return { ok: true, node: snapshot.primary, target: 'primary', reason };
  }

  private read(input: RouteInput, reason: RouteReason): RouteDecision {
    const { snapshot, routing, statement, session } = input;
    const budget: LagBudget = { bytes: routing.max_replica_lag.bytes, timeMs: statement.hints.maxLagMs ?? routing.max_replica_lag.time };
    const eligible: NodeState[] = [];
    let lagging = false;
    for (const n of snapshot.nodes) {
      const e = replicaEligibility(n, budget);
      if (e.eligible) eligible.push(n);
      else if (n.role === 'replica' && n.up && !n.drained && isLag(e.reason)) lagging = true;
    }
    let candidates = eligible;
    // Read-your-writes: only replicas that have replayed the session's last write.
    const causal = routing.consistency === 'causal' && session.causalPosition != null && input.listener === 'rw';
    if (causal) {
      const pos = session.causalPosition!;
      candidates = eligible.filter((n) => n.replayPosition !== null && n.replayPosition >= pos);
      if (candidates.length === 0) return this.fallback(input, 'causal');
    }
    const weighted: { name: string; weight: number }[] = candidates.map((n) => ({ name: n.name, weight: n.weight }));
    const primaryUsable = input.listener === 'rw' && routing.primary_reads > 0 && snapshot.primary && !snapshot.splitBrain;
    if (primaryUsable) weighted.push({ name: snapshot.primary!, weight: routing.primary_reads });
    const picked = this.balancer.pick(weighted);
    if (picked === undefined) return this.fallback(input, lagging ? 'lag_fallback' : 'no_replica');
    if (picked === snapshot.primary) return { ok: true, node: picked, target: 'primary', reason: 'primary_reads' };
    return { ok: true, node: picked, target: 'replica', reason: causal && reason === 'classified' ? 'causal' : reason };
  }

  /** No replica can serve the read: the primary, or an error, per when_no_replica. */
  private fallback(input: RouteInput, reason: 'lag_fallback' | 'no_replica' | 'causal'): RouteDecision {
    // Read-your-writes is a correctness rule: its fallback is always the primary.
    // The read-only listener never lets a write reach the primary through a fallback.
    const writeOnReadPort = input.listener === 'ro' && input.statement.class === 'write';
    if ((input.routing.when_no_replica === 'error' && reason !== 'causal') || writeOnReadPort) {
      return { ok: false, error: 'SWITCHYARD_NO_REPLICA', message: `cluster ${input.snapshot.cluster}: no replica is eligible for reads (${reason === 'lag_fallback' ? 'all lag over budget' : 'none up'})` };
    }
    return this.primary(input.snapshot, reason);
  }
}

function isLag(reason: IneligibleReason | undefined): boolean {
  return reason === 'lag_bytes' || reason === 'lag_time' || reason === 'lag_unknown';
}

/** Per node: eligible for reads or why not (for /status and metrics). */
export function explainEligibility(snapshot: TopologySnapshot, budget: LagBudget): Map<string, { eligible: boolean; reason?: IneligibleReason }> {
  const out = new Map<string, { eligible: boolean; reason?: IneligibleReason }>();
  for (const n of snapshot.nodes) out.set(n.name, replicaEligibility(n, budget));
  return out;
}
