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

type RoutingRuntime = Pick<PgClusterRuntime, 'config' | 'router' | 'topology' | 'snapshot'>;
type SessionRouting = { causalPosition?: bigint | null; avoidReplica?: string | null; causal?: CausalTracker };

/**
 * Routes one batch with the cluster's current snapshot, synchronously: the
 * decision, or 'wait' when a write finds no primary (failover in progress) and
 * failover.write_hold allows waiting for one. Throws when it cannot route.
 */
export function routeNow(
  // Only what routing reads, so the MySQL runtime routes through the same code.
  runtime: RoutingRuntime,
  statement: Classification,
  listener: 'rw' | 'ro',
  session: SessionRouting = {},
): RoutedTo | 'wait' {
  const decision = runtime.router.route(routingInput(runtime, statement, listener, session));
  if (!decision.ok) {
    if (decision.error === ErrorCodes.NO_PRIMARY && runtime.config.failover.write_hold > 0) return 'wait';
    throw new SwitchyardError(decision.error, decision.message);
  }
  session.causal?.begin(decision.target === 'primary' && statement.class === 'write');
  return { node: decision.node, target: decision.target, reason: decision.reason };
}

/**
 * routeNow, and when it says 'wait', waits up to failover.write_hold for a
 * snapshot with a primary (or split brain), then routes once more; no primary
 * by then fails with NO_PRIMARY.
 */
export async function decideRoute(runtime: RoutingRuntime, statement: Classification, listener: 'rw' | 'ro', session: SessionRouting = {}): Promise<RoutedTo> {
  const now = routeNow(runtime, statement, listener, session);
  if (now !== 'wait') return now;
  await runtime.topology.waitFor((s) => s.primary !== null || s.splitBrain, runtime.config.failover.write_hold);
  const decision = runtime.router.route(routingInput(runtime, statement, listener, session));
  if (!decision.ok) {
    // Say that it waited, so "no primary" after a pause is not read as a routing bug.
    const waited = decision.error === ErrorCodes.NO_PRIMARY ? ` after waiting ${runtime.config.failover.write_hold}ms for one (failover.write_hold)` : '';
    throw new SwitchyardError(decision.error, decision.message + waited);
  }
  session.causal?.begin(decision.target === 'primary' && statement.class === 'write');
  return { node: decision.node, target: decision.target, reason: decision.reason };
}

function routingInput(runtime: RoutingRuntime, statement: Classification, listener: 'rw' | 'ro', session: SessionRouting) {
  const cfg = runtime.config;
  const snap = runtime.snapshot();
  // A read being retried avoids the replica whose connection just died (the primary is never avoided).
  const avoid = session.avoidReplica;
  const snapshot = !avoid || avoid === snap.primary ? snap : { ...snap, nodes: snap.nodes.filter((n) => n.name !== avoid) };
  // Read-your-writes: the position this session's reads need (eventual: none).
  const causalPosition = cfg.routing.consistency === 'causal' && session.causal ? session.causal.required(snap) : (session.causalPosition ?? null);
  return { statement, listener, snapshot, routing: cfg.routing, session: { pinnedNode: null, causalPosition } };
}
