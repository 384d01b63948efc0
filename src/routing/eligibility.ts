import type { NodeState } from './topology.js';

export type IneligibleReason = 'down' | 'drained' | 'not_replica' | 'lag_bytes' | 'lag_time' | 'lag_unknown' | 'zero_weight';

export interface LagBudget {
  bytes: number;
  timeMs: number;
}

/**
 * May this node serve reads now? A pure decision on one snapshot entry. A
 * replica whose lag is unknown is not read from: unsure means primary.
 */
export function replicaEligibility(node: NodeState, budget: LagBudget): { eligible: boolean; reason?: IneligibleReason } {
  if (!node.up) return { eligible: false, reason: 'down' };
  if (node.drained) return { eligible: false, reason: 'drained' };
  if (node.role !== 'replica') return { eligible: false, reason: 'not_replica' };
  if (node.weight <= 0) return { eligible: false, reason: 'zero_weight' };
  if (node.lagBytes === null || node.lagSeconds === null) {
    if (Number.isFinite(budget.bytes) || Number.isFinite(budget.timeMs)) return { eligible: false, reason: 'lag_unknown' };
    return { eligible: true };
  }
  if (node.lagBytes > budget.bytes) return { eligible: false, reason: 'lag_bytes' };
  if (node.lagSeconds * 1000 > budget.timeMs) return { eligible: false, reason: 'lag_time' };
  return { eligible: true };
}
