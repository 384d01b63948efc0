import { ErrorCodes, SwitchyardError } from '../../errors.js';
import type { Classification } from '../../sql/index.js';
import type { RouteReason } from '../../routing/router.js';
import type { PgClusterRuntime } from '../../runtime/pg-cluster.js';
import type { CausalTracker } from '../causal.js';

export interface RoutedTo {
  node: string;
  target: 'primary' | 'replica';
  reason: RouteReason;
}

/**
 * Routes one batch with the cluster's current snapshot. A write that finds no
 * primary (failover in progress) waits up to failover.write_hold for a snapshot
 * that has one, then fails with NO_PRIMARY; split brain fails at once.
 */
export async function decideRoute(
  runtime: PgClusterRuntime,
  statement: Classification,
  listener: 'rw' | 'ro',
  session: { causalPosition?: bigint | null; avoidReplica?: string | null; causal?: CausalTracker } = {},
): Promise<RoutedTo> {
  const cfg = runtime.config;
  // A read being retried avoids the replica whose connection just died (the primary is never avoided).
  const view = () => {
    const snap = runtime.snapshot();
    const avoid = session.avoidReplica;
    if (!avoid || avoid === snap.primary) return snap;
    return { ...snap, nodes: snap.nodes.filter((n) => n.name !== avoid) };
  };
  // Read-your-writes: the position this session's reads need (eventual: none).
  const causalPosition = cfg.routing.consistency === 'causal' && session.causal ? session.causal.required(runtime.snapshot()) : (session.causalPosition ?? null);
  const input = () => ({
    statement,
    listener,
    snapshot: view(),
    routing: cfg.routing,
    session: { pinnedNode: null, causalPosition },
  });
  let decision = runtime.router.route(input());
  if (!decision.ok && decision.error === ErrorCodes.NO_PRIMARY && cfg.failover.write_hold > 0) {
    const snap = await runtime.topology.waitFor((s) => s.primary !== null || s.splitBrain, cfg.failover.write_hold);
    if (snap) decision = runtime.router.route(input());
  }
  if (!decision.ok) throw new SwitchyardError(decision.error, decision.message);
  session.causal?.begin(decision.target === 'primary' && statement.class === 'write');
  return { node: decision.node, target: decision.target, reason: decision.reason };
}
