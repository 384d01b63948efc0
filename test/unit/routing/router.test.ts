import { describe, expect, it } from 'vitest';
import { Router, explainEligibility, type RouteDecision, type RouteInput } from '../../../src/routing/router.js';
import { SmoothWeightedBalancer } from '../../../src/routing/balancer.js';
import { healthy, input, node, primaryNode, snap } from './fixtures.js';

type Want = { node?: string | RegExp; target?: 'primary' | 'replica'; reason?: string } | { error: string };

const laggingReplicas = snap([primaryNode('p'), node('r1', { lagBytes: 5000 }), node('r2', { lagSeconds: 5 })]);
const downReplicas = snap([primaryNode('p'), node('r1', { up: false }), node('r2', { up: false })]);
const primaryOnly = snap([primaryNode('p')]);
const splitBrain = snap([primaryNode('a'), primaryNode('b'), node('r1')], { primary: null, splitBrain: true });
// r1 has replayed up to 100, r2 up to 300.
const mixedPositions = snap([primaryNode('p'), node('r1', { replayPosition: 100n }), node('r2', { replayPosition: 300n })]);

const cases: [string, RouteInput, Want][] = [
  // Writes on the read/write listener.
  ['write -> primary', input({ cls: 'write' }), { node: 'p', target: 'primary', reason: 'classified' }],
  ['write with a replica hint -> still the primary', input({ cls: 'write', hints: { route: 'replica' } }), { node: 'p', target: 'primary', reason: 'classified' }],
  ['write with a primary hint -> primary, classified', input({ cls: 'write', hints: { route: 'primary' } }), { node: 'p', target: 'primary', reason: 'classified' }],
  ['write with a max-lag hint -> primary', input({ cls: 'write', hints: { maxLagMs: 1e9 } }), { node: 'p', reason: 'classified' }],
  ['write, no primary -> NO_PRIMARY', input({ cls: 'write', snapshot: snap([node('r1')]) }), { error: 'SWITCHYARD_NO_PRIMARY' }],
  ['write, split brain -> SPLIT_BRAIN', input({ cls: 'write', snapshot: splitBrain }), { error: 'SWITCHYARD_SPLIT_BRAIN' }],
  ['write, primary named but down -> NO_PRIMARY', input({ cls: 'write', snapshot: snap([primaryNode('p', { up: false }), node('r1')], { primary: 'p' }) }), { error: 'SWITCHYARD_NO_PRIMARY' }],
  // Reads.
  ['read -> a replica', input(), { node: /^r[12]$/, target: 'replica', reason: 'classified' }],
  ['read with a primary hint -> primary', input({ hints: { route: 'primary' } }), { node: 'p', target: 'primary', reason: 'hint' }],
  ['read with a replica hint -> replica, hint', input({ hints: { route: 'replica' } }), { node: /^r[12]$/, target: 'replica', reason: 'hint' }],
  ['read with a primary hint in split brain -> SPLIT_BRAIN', input({ hints: { route: 'primary' }, snapshot: splitBrain }), { error: 'SWITCHYARD_SPLIT_BRAIN' }],
  ['read in split brain still uses a healthy replica', input({ snapshot: splitBrain }), { node: 'r1', target: 'replica', reason: 'classified' }],
  ['drained replica is skipped', input({ snapshot: snap([primaryNode('p'), node('r1', { drained: true }), node('r2')]) }), { node: 'r2' }],
  ['zero-weight replica is skipped', input({ snapshot: snap([primaryNode('p'), node('r1', { weight: 0 }), node('r2')]) }), { node: 'r2' }],
  ['node of unknown role is skipped', input({ snapshot: snap([primaryNode('p'), node('u', { role: 'unknown' }), node('r2')]) }), { node: 'r2' }],
  // Lag and the fallback.
  ['replicas over the lag budget -> primary, lag_fallback', input({ snapshot: laggingReplicas }), { node: 'p', target: 'primary', reason: 'lag_fallback' }],
  ['replica with unknown lag -> primary, lag_fallback', input({ snapshot: snap([primaryNode('p'), node('r1', { lagBytes: null, lagSeconds: null })]) }), { node: 'p', reason: 'lag_fallback' }],
  ['replicas down -> primary, no_replica', input({ snapshot: downReplicas }), { node: 'p', target: 'primary', reason: 'no_replica' }],
  ['no replicas at all -> primary, no_replica', input({ snapshot: primaryOnly }), { node: 'p', reason: 'no_replica' }],
  ['one replica down, one lagging -> lag_fallback', input({ snapshot: snap([primaryNode('p'), node('r1', { up: false }), node('r2', { lagBytes: 5000 })]) }), { node: 'p', reason: 'lag_fallback' }],
  ['lagging replica that is down counts as down', input({ snapshot: snap([primaryNode('p'), node('r1', { up: false, lagBytes: 5000 })]) }), { node: 'p', reason: 'no_replica' }],
  ['when_no_replica error, replicas lag -> NO_REPLICA', input({ routing: { when_no_replica: 'error' }, snapshot: laggingReplicas }), { error: 'SWITCHYARD_NO_REPLICA' }],
  ['when_no_replica error, replicas down -> NO_REPLICA', input({ routing: { when_no_replica: 'error' }, snapshot: downReplicas }), { error: 'SWITCHYARD_NO_REPLICA' }],
  ['fallback with no primary either -> NO_PRIMARY', input({ snapshot: snap([node('r1', { up: false })]) }), { error: 'SWITCHYARD_NO_PRIMARY' }],
  ['max-lag hint looser than the budget admits a lagging replica', input({ hints: { maxLagMs: 10_000 }, snapshot: snap([primaryNode('p'), node('r1', { lagSeconds: 5 })]) }), { node: 'r1', target: 'replica', reason: 'classified' }],
  ['max-lag hint stricter than the budget excludes a replica', input({ hints: { maxLagMs: 100 }, snapshot: snap([primaryNode('p'), node('r1', { lagSeconds: 0.5 })]) }), { node: 'p', reason: 'lag_fallback' }],
  ['max-lag hint does not lift the bytes budget', input({ hints: { maxLagMs: 10_000 }, snapshot: snap([primaryNode('p'), node('r1', { lagBytes: 5000 })]) }), { node: 'p', reason: 'lag_fallback' }],
  // Read-your-writes.
  ['causal: every replica behind the session write -> primary, causal', input({ session: { causalPosition: 400n }, snapshot: mixedPositions }), { node: 'p', target: 'primary', reason: 'causal' }],
  ['causal: only the caught-up replica', input({ session: { causalPosition: 200n }, snapshot: mixedPositions }), { node: 'r2', target: 'replica', reason: 'classified' }],
  ['causal: a replica exactly at the position qualifies', input({ session: { causalPosition: 300n }, snapshot: mixedPositions }), { node: 'r2' }],
  ['causal: unknown replay position does not qualify', input({ session: { causalPosition: 1n }, snapshot: snap([primaryNode('p'), node('r1', { replayPosition: null })]) }), { node: 'p', reason: 'causal' }],
  ['causal fallback ignores when_no_replica error', input({ routing: { when_no_replica: 'error' }, session: { causalPosition: 400n }, snapshot: mixedPositions }), { node: 'p', reason: 'causal' }],
  ['causal with no eligible replica falls back as lag_fallback', input({ session: { causalPosition: 1n }, snapshot: laggingReplicas }), { node: 'p', reason: 'lag_fallback' }],
  ['causal with no eligible replica honours when_no_replica error', input({ routing: { when_no_replica: 'error' }, session: { causalPosition: 1n }, snapshot: downReplicas }), { error: 'SWITCHYARD_NO_REPLICA' }],
  ['causal with no session position reads any replica', input({ session: { causalPosition: null } }), { node: /^r[12]$/, reason: 'classified' }],
  ['eventual ignores the session position', input({ routing: { consistency: 'eventual' }, session: { causalPosition: 400n }, snapshot: mixedPositions }), { node: /^r[12]$/, reason: 'classified' }],
  ['causal: behind replicas even with primary_reads -> primary, causal', input({ routing: { primary_reads: 5 }, session: { causalPosition: 400n }, snapshot: mixedPositions }), { node: 'p', reason: 'causal' }],
  // Pinned sessions.
  ['pinned to the primary', input({ cls: 'write', session: { pinnedNode: 'p' } }), { node: 'p', target: 'primary', reason: 'pinned' }],
  ['pinned to a replica keeps a read there', input({ session: { pinnedNode: 'r2' } }), { node: 'r2', target: 'replica', reason: 'pinned' }],
  ['pinned beats a primary hint', input({ hints: { route: 'primary' }, session: { pinnedNode: 'r1' } }), { node: 'r1', reason: 'pinned' }],
  ['pinned node gone: returned anyway for a write', input({ cls: 'write', session: { pinnedNode: 'gone' } }), { node: 'gone', reason: 'pinned' }],
  ['pinned primary in split brain: returned anyway', input({ cls: 'write', snapshot: splitBrain, session: { pinnedNode: 'a' } }), { node: 'a', reason: 'pinned' }],
  ['pinned on the read-only listener', input({ listener: 'ro', session: { pinnedNode: 'r1' } }), { node: 'r1', reason: 'pinned' }],
  ['a null pin is no pin', input({ cls: 'write', session: { pinnedNode: null } }), { node: 'p', reason: 'classified' }],
  // The read-only listener.
  ['read-only listener: read -> replica', input({ listener: 'ro' }), { node: /^r[12]$/, target: 'replica', reason: 'read_only_listener' }],
  ['read-only listener: write -> replica', input({ cls: 'write', listener: 'ro' }), { node: /^r[12]$/, target: 'replica', reason: 'read_only_listener' }],
  ['read-only listener ignores a primary hint', input({ listener: 'ro', hints: { route: 'primary' } }), { node: /^r[12]$/, reason: 'read_only_listener' }],
  ['read-only listener: read falls back to the primary', input({ listener: 'ro', snapshot: downReplicas }), { node: 'p', target: 'primary', reason: 'no_replica' }],
  ['read-only listener: lagging replicas -> lag_fallback', input({ listener: 'ro', snapshot: laggingReplicas }), { node: 'p', reason: 'lag_fallback' }],
  ['read-only listener: read with when_no_replica error', input({ listener: 'ro', routing: { when_no_replica: 'error' }, snapshot: downReplicas }), { error: 'SWITCHYARD_NO_REPLICA' }],
  ['read-only listener never runs a write on the primary', input({ cls: 'write', listener: 'ro', snapshot: primaryOnly }), { error: 'SWITCHYARD_NO_REPLICA' }],
  ['read-only listener ignores the causal position', input({ listener: 'ro', session: { causalPosition: 400n }, snapshot: mixedPositions }), { node: /^r[12]$/, reason: 'read_only_listener' }],
  ['read-only listener ignores primary_reads', input({ listener: 'ro', routing: { primary_reads: 100 }, snapshot: snap([primaryNode('p'), node('r1')]) }), { node: 'r1' }],
  // primary_reads.
  ['primary_reads with no replica left -> primary, primary_reads', input({ routing: { primary_reads: 1 }, snapshot: primaryOnly }), { node: 'p', target: 'primary', reason: 'primary_reads' }],
  ['primary_reads in split brain adds no primary', input({ routing: { primary_reads: 1 }, snapshot: snap([primaryNode('a'), primaryNode('b')], { primary: null, splitBrain: true }) }), { error: 'SWITCHYARD_SPLIT_BRAIN' }],
];

function check(d: RouteDecision, want: Want): void {
  if ('error' in want) {
    expect(d).toMatchObject({ ok: false, error: want.error });
    if (!d.ok) expect(d.message).toContain('cluster c');
    return;
  }
  expect(d.ok, JSON.stringify(d)).toBe(true);
  if (!d.ok) return;
  if (want.node instanceof RegExp) expect(d.node).toMatch(want.node);
  else if (want.node !== undefined) expect(d.node).toBe(want.node);
  if (want.target) expect(d.target).toBe(want.target);
  if (want.reason) expect(d.reason).toBe(want.reason);
}

describe('Router rules', () => {
  it.each(cases)('%s', (_name, inp, want) => {
    // Several decisions, so a balancer that happened to pick right once cannot hide a wrong candidate.
    const router = new Router();
    for (let i = 0; i < 6; i++) check(router.route(inp), want);
  });

  it('spreads reads over replicas by weight', () => {
    const router = new Router();
    const s = snap([primaryNode('p'), node('r1', { weight: 2 }), node('r2', { weight: 1 })]);
    const counts = countNodes(router, input({ snapshot: s }), 300);
    expect(counts).toEqual({ r1: 200, r2: 100 });
  });

  it('primary_reads weights the primary among the readers', () => {
    const counts = countNodes(new Router(), input({ routing: { primary_reads: 2 } }), 400);
    expect(counts).toEqual({ p: 200, r1: 100, r2: 100 });
  });

  it('routers sharing a balancer share the rotation', () => {
    const balancer = new SmoothWeightedBalancer();
    const [a, b] = [new Router(balancer), new Router(balancer)];
    const picks = [a, b, a, b].map((r) => {
      const d = r.route(input());
      return d.ok ? d.node : d.error;
    });
    expect(picks).toEqual(['r1', 'r2', 'r1', 'r2']);
  });
});

describe('explainEligibility', () => {
  it('gives every node its verdict and reason', () => {
    const s = snap([primaryNode('p'), node('r1'), node('r2', { lagBytes: 5000 }), node('r3', { up: false }), node('r4', { lagSeconds: null })]);
    const out = explainEligibility(s, { bytes: 1000, timeMs: 1000 });
    expect(Object.fromEntries(out)).toEqual({
      p: { eligible: false, reason: 'not_replica' },
      r1: { eligible: true },
      r2: { eligible: false, reason: 'lag_bytes' },
      r3: { eligible: false, reason: 'down' },
      r4: { eligible: false, reason: 'lag_unknown' },
    });
  });

  it('an infinite budget admits replicas of unknown lag', () => {
    const s = snap([primaryNode('p'), node('r1', { lagBytes: null, lagSeconds: null })]);
    expect(explainEligibility(s, { bytes: Infinity, timeMs: Infinity }).get('r1')).toEqual({ eligible: true });
    expect(new Router().route(input({ snapshot: s, routing: { max_replica_lag: { bytes: Infinity, time: Infinity } } }))).toMatchObject({ ok: true, node: 'r1' });
  });

  it('the default healthy fixture has both replicas eligible', () => {
    expect([...explainEligibility(healthy, { bytes: 0, timeMs: 0 }).values()].filter((e) => e.eligible)).toHaveLength(2);
  });
});

function countNodes(router: Router, inp: RouteInput, n: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const d = router.route(inp);
    const key = d.ok ? d.node : d.error;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
