import type { NodeState } from './topology.js';

export type IneligibleReason = 'down' | 'drained' | 'not_replica' | 'lag_bytes' | 'lag_time' | 'lag_unknown' | 'zero_weight' | 'noloadbalance';

/** How far behind a replica may be and still serve reads. Infinity = no limit on that measure. */
export interface LagBudget {
  bytes: number;
  timeMs: number;
}

export interface Eligibility {
  eligible: boolean;
  reason?: IneligibleReason;
}

/**
 * May this node serve reads now? A pure decision on one snapshot entry. Checks
 * run in a fixed order so the reason names the most basic problem first.
 *
 * A measure that is unknown (null, or NaN from a bad probe) counts against the
 * replica whenever its budget is finite: unsure means primary. A measure with
 * an infinite budget is not looked at, so an infinite budget admits replicas
 * whose lag nobody measured.
 */
export function replicaEligibility(node: NodeState, budget: LagBudget): Eligibility {
  if (!node.up) return { eligible: false, reason: 'down' };
  if (node.drained) return { eligible: false, reason: 'drained' };
  if (node.role !== 'replica') return { eligible: false, reason: 'not_replica' };
  // Patroni's noloadbalance tag (discovery.patroni): never a read target.
  if (node.patroni?.noloadbalance) return { eligible: false, reason: 'noloadbalance' };
  if (!(node.weight > 0)) return { eligible: false, reason: 'zero_weight' };
  const bytes = checkLag(node.lagBytes, budget.bytes);
  if (bytes === 'over') return { eligible: false, reason: 'lag_bytes' };
  const timeMs = checkLag(node.lagSeconds === null ? null : node.lagSeconds * 1000, budget.timeMs);
  if (timeMs === 'over') return { eligible: false, reason: 'lag_time' };
  // A measured excess is reported before an unknown measure: it is the more useful reason.
  if (bytes === 'unknown' || timeMs === 'unknown') return { eligible: false, reason: 'lag_unknown' };
  return { eligible: true };
}

function checkLag(lag: number | null, budget: number): 'within' | 'over' | 'unknown' {
  if (budget === Infinity) return 'within';
  if (lag === null || Number.isNaN(lag)) return 'unknown';
  return lag > budget ? 'over' : 'within';
}
