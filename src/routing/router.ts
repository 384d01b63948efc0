import { SmoothWeightedBalancer } from './balancer.js';
import { replicaEligibility, type Eligibility, type IneligibleReason, type LagBudget } from './eligibility.js';
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

/**
 * Everything one routing decision depends on. `statement` is structurally the
 * part of the classifier's Classification the router reads, so a Classification
 * can be passed as is.
 */
export interface RouteInput {
  statement: { class: 'read' | 'write'; hints: { route?: 'primary' | 'replica'; maxLagMs?: number } };
  listener: 'rw' | 'ro';
  snapshot: TopologySnapshot;
  routing: {
    primary_reads: number;
    max_replica_lag: { bytes: number; time: number /* ms */ };
    when_no_replica: 'primary' | 'error';
    consistency: 'eventual' | 'causal';
  };
  session: {
    /** The session is pinned to this node (open transaction, temp table, ...). */
    pinnedNode?: string | null;
    /** The position of the session's last write (consistency: causal). */
    causalPosition?: bigint | null;
  };
}

export type RouteErrorCode = 'SWITCHYARD_NO_PRIMARY' | 'SWITCHYARD_SPLIT_BRAIN' | 'SWITCHYARD_NO_REPLICA';

export type RouteDecision =
  | { ok: true; node: string; target: 'primary' | 'replica'; reason: RouteReason }
  | { ok: false; error: RouteErrorCode; message: string };

/** Why no replica could take a read; decides the reason (and whether when_no_replica applies). */
type NoReplicaReason = 'lag_fallback' | 'no_replica' | 'causal';

/**
 * Decides where one statement goes, from its class and hints, the listener, the
 * topology snapshot and the session. Pure apart from the balancer's round-robin
 * position. On the read/write listener a statement that is not a read never
 * goes to a replica unless the session is pinned there, whatever the hints say.
 */
export class Router {
  constructor(private readonly balancer: SmoothWeightedBalancer = new SmoothWeightedBalancer()) {}

  route(input: RouteInput): RouteDecision {
    const { statement, snapshot, session } = input;
    // 1. A pinned session stays where its state lives, even if that node is gone:
    //    running the statement elsewhere would silently lose the transaction or
    //    temp table, so the caller gets to fail on the dead node instead.
    if (session.pinnedNode) {
      const target = session.pinnedNode === snapshot.primary ? 'primary' : 'replica';
      return { ok: true, node: session.pinnedNode, target, reason: 'pinned' };
    }
    // 2. The read-only listener sends everything to replicas.
    if (input.listener === 'ro') return this.read(input, 'read_only_listener');
    // 3. Anything that is not a read goes to the primary; a replica hint cannot change that.
    if (statement.class !== 'read') return primaryOf(snapshot, 'classified');
    // 4. Reads: a primary hint, else a replica (a replica hint only changes the reason).
    if (statement.hints.route === 'primary') return primaryOf(snapshot, 'hint');
    return this.read(input, statement.hints.route === 'replica' ? 'hint' : 'classified');
  }

  /** A replica for a read (or for anything on the read-only listener). */
  private read(input: RouteInput, reason: RouteReason): RouteDecision {
    const { snapshot, routing, statement, session } = input;
    // 1. Replicas within the lag budget; a max-lag hint replaces the time budget for this statement.
    const budget: LagBudget = { bytes: routing.max_replica_lag.bytes, timeMs: statement.hints.maxLagMs ?? routing.max_replica_lag.time };
    const eligible: NodeState[] = [];
    let someLagging = false;
    for (const n of snapshot.nodes) {
      const e = replicaEligibility(n, budget);
      if (e.eligible) eligible.push(n);
      else if (isLag(e.reason)) someLagging = true;
    }
    // 2. Read-your-writes: only replicas that have replayed the session's last write.
    //    When replicas were eligible but none has caught up, the primary has the data.
    //    Not on the read-only listener: it promises replicas only, and its sessions do not write.
    let candidates = eligible;
    const causal = routing.consistency === 'causal' && input.listener === 'rw';
    const causalPosition = causal ? (session.causalPosition ?? null) : null;
    if (causalPosition !== null && eligible.length > 0) {
      candidates = eligible.filter((n) => n.replayPosition !== null && n.replayPosition >= causalPosition);
      if (candidates.length === 0) return this.noReplica(input, 'causal');
    }
    // 3. primary_reads makes the primary one more reader (never on the read-only listener).
    // A primary tagged noloadbalance in Patroni is no weighted reader either (it still takes when_no_replica fallbacks).
    const primaryReads =
      input.listener === 'rw' && routing.primary_reads > 0 && snapshot.primary !== null && !snapshot.splitBrain && !snapshot.nodes.some((n) => n.name === snapshot.primary && n.patroni?.noloadbalance);
    const weighted: readonly { name: string; weight: number }[] = primaryReads ? [...candidates, { name: snapshot.primary!, weight: routing.primary_reads }] : candidates;
    // 4. Smooth weighted round-robin among them.
    const picked = this.balancer.pick(weighted);
    if (picked === undefined) return this.noReplica(input, someLagging ? 'lag_fallback' : 'no_replica');
    if (primaryReads && picked === snapshot.primary) return { ok: true, node: picked, target: 'primary', reason: 'primary_reads' };
    return { ok: true, node: picked, target: 'replica', reason };
  }

  /**
   * No replica can take the statement: the primary or an error, per
   * when_no_replica. Two exceptions: a causal fallback always goes to the
   * primary (the session's own write is there, so refusing helps no one), and a
   * write that came in on the read-only listener is refused rather than run on
   * the primary, so that port never writes whatever the replicas' health.
   */
  private noReplica(input: RouteInput, reason: NoReplicaReason): RouteDecision {
    const writeOnReadOnlyListener = input.listener === 'ro' && input.statement.class !== 'read';
    if (writeOnReadOnlyListener || (reason !== 'causal' && input.routing.when_no_replica === 'error')) {
      const why = reason === 'lag_fallback' ? 'every replica is over the lag budget' : 'no replica is up';
      const what = writeOnReadOnlyListener ? 'a write on the read-only listener' : 'reads';
      return { ok: false, error: 'SWITCHYARD_NO_REPLICA', message: `cluster ${input.snapshot.cluster}: no replica is eligible for ${what} (${why})` };
    }
    return primaryOf(input.snapshot, reason);
  }
}

/** The primary, or why there is none to use. */
function primaryOf(snapshot: TopologySnapshot, reason: RouteReason): RouteDecision {
  if (snapshot.splitBrain) {
    return { ok: false, error: 'SWITCHYARD_SPLIT_BRAIN', message: `cluster ${snapshot.cluster}: more than one writable node (split brain); writes are refused until it is resolved` };
  }
  if (snapshot.primary === null) {
    return { ok: false, error: 'SWITCHYARD_NO_PRIMARY', message: `cluster ${snapshot.cluster}: no primary is available` };
  }
  const node = snapshot.nodes.find((n) => n.name === snapshot.primary);
  // A snapshot should never name a primary it reports down; if one does, do not send writes into it.
  if (node && !node.up) {
    return { ok: false, error: 'SWITCHYARD_NO_PRIMARY', message: `cluster ${snapshot.cluster}: primary ${snapshot.primary} is down` };
  }
  return { ok: true, node: snapshot.primary, target: 'primary', reason };
}

function isLag(reason: IneligibleReason | undefined): boolean {
  return reason === 'lag_bytes' || reason === 'lag_time' || reason === 'lag_unknown';
}

/** Per node: eligible for reads or why not (for /status and metrics). */
export function explainEligibility(snapshot: TopologySnapshot, budget: LagBudget): Map<string, Eligibility> {
  const out = new Map<string, Eligibility>();
  for (const n of snapshot.nodes) out.set(n.name, replicaEligibility(n, budget));
  return out;
}
