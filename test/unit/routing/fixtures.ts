import type { RouteInput } from '../../../src/routing/router.js';
import type { NodeState, TopologySnapshot } from '../../../src/routing/topology.js';

/** A healthy, caught-up replica unless overridden. */
export function node(name: string, over: Partial<NodeState> = {}): NodeState {
  return { name, host: '127.0.0.1', port: 5432, weight: 1, role: 'replica', up: true, drained: false, lagBytes: 0, lagSeconds: 0, replayPosition: 100n, ...over };
}

export function primaryNode(name = 'p', over: Partial<NodeState> = {}): NodeState {
  return node(name, { role: 'primary', lagBytes: null, lagSeconds: null, replayPosition: 500n, ...over });
}

/** A snapshot whose primary is its one up node with role primary, unless overridden. */
export function snap(nodes: NodeState[], over: Partial<TopologySnapshot> = {}): TopologySnapshot {
  const primaries = nodes.filter((n) => n.role === 'primary' && n.up);
  return { cluster: 'c', version: 1, takenAt: 0, nodes, primary: primaries.length === 1 ? primaries[0]!.name : null, splitBrain: false, ...over };
}

export const healthy = snap([primaryNode('p'), node('r1'), node('r2')]);

export const routing: RouteInput['routing'] = {
  primary_reads: 0,
  max_replica_lag: { bytes: 1000, time: 1000 },
  when_no_replica: 'primary',
  consistency: 'causal',
};

export function input(
  over: Partial<Omit<RouteInput, 'routing'>> & { cls?: 'read' | 'write'; hints?: RouteInput['statement']['hints']; routing?: Partial<RouteInput['routing']> } = {},
): RouteInput {
  return {
    statement: { class: over.cls ?? 'read', hints: over.hints ?? {} },
    listener: over.listener ?? 'rw',
    snapshot: over.snapshot ?? healthy,
    routing: { ...routing, ...over.routing },
    session: over.session ?? {},
  };
}
