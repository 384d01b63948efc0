import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Router, type RouteInput } from '../../../src/routing/router.js';
import { SmoothWeightedBalancer } from '../../../src/routing/balancer.js';
import { replicaEligibility } from '../../../src/routing/eligibility.js';
import { formatLsn, parseLsn, type NodeState, type TopologySnapshot } from '../../../src/routing/topology.js';

const node = (name: string, over: Partial<NodeState> = {}): NodeState => ({
  name,
  host: 'h',
  port: 1,
  weight: 1,
  role: 'replica',
  up: true,
  drained: false,
  lagBytes: 0,
  lagSeconds: 0,
  replayPosition: 100n,
  ...over,
});
const snap = (nodes: NodeState[], over: Partial<TopologySnapshot> = {}): TopologySnapshot => ({
  cluster: 'c',
  version: 1,
  takenAt: 0,
  nodes,
  primary: nodes.find((n) => n.role === 'primary')?.name ?? null,
  splitBrain: false,
  ...over,
});
const healthy = snap([node('p', { role: 'primary', lagBytes: null, lagSeconds: null }), node('r1'), node('r2')]);
const routing = { primary_reads: 0, max_replica_lag: { bytes: 1000, time: 1000 }, when_no_replica: 'primary' as const, consistency: 'causal' as const };
const input = (over: Partial<RouteInput> & { cls?: 'read' | 'write'; hints?: RouteInput['statement']['hints'] } = {}): RouteInput => ({
  statement: { class: over.cls ?? 'read', hints: over.hints ?? {} },
  listener: over.listener ?? 'rw',
  snapshot: over.snapshot ?? healthy,
  routing: over.routing ?? routing,
  session: over.session ?? {},
});

describe('Router', () => {
  const cases: [string, RouteInput, { node?: string | RegExp; target?: string; reason?: string; error?: string }][] = [
    ['write -> primary', input({ cls: 'write' }), { node: 'p', target: 'primary', reason: 'classified' }],
    ['write with replica hint -> still primary', input({ cls: 'write', hints: { route: 'replica' } }), { node: 'p', reason: 'classified' }],
    ['read -> a replica', input(), { node: /^r[12]$/, target: 'replica', reason: 'classified' }],
    ['read with primary hint', input({ hints: { route: 'primary' } }), { node: 'p', target: 'primary', reason: 'hint' }],
    ['read with replica hint', input({ hints: { route: 'replica' } }), { node: /^r[12]$/, reason: 'hint' }],
    ['pinned session', input({ cls: 'write', session: { pinnedNode: 'p' } }), { node: 'p', reason: 'pinned' }],
    ['write, no primary', input({ cls: 'write', snapshot: snap([node('r1')]) }), { error: 'SWITCHYARD_NO_PRIMARY' }],
    ['write, split brain', input({ cls: 'write', snapshot: snap([node('a', { role: 'primary' }), node('b', { role: 'primary' })], { primary: null, splitBrain: true }) }), { error: 'SWITCHYARD_SPLIT_BRAIN' }],
    ['read, replicas lag -> lag_fallback', input({ snapshot: snap([node('p', { role: 'primary' }), node('r1', { lagBytes: 5000 }), node('r2', { lagSeconds: 5 })]) }), { node: 'p', reason: 'lag_fallback' }],
    ['read, replicas down -> no_replica', input({ snapshot: snap([node('p', { role: 'primary' }), node('r1', { up: false })]) }), { node: 'p', reason: 'no_replica' }],
    ['read, when_no_replica error', input({ routing: { ...routing, when_no_replica: 'error' }, snapshot: snap([node('p', { role: 'primary' }), node('r1', { lagBytes: 5000 })]) }), { error: 'SWITCHYARD_NO_REPLICA' }],
    ['max_lag hint looser than budget admits a lagging replica', input({ hints: { maxLagMs: 10_000 }, snapshot: snap([node('p', { role: 'primary' }), node('r1', { lagSeconds: 5 })]) }), { node: 'r1', target: 'replica' }],
    ['max_lag hint stricter than budget excludes it', input({ hints: { maxLagMs: 100 }, snapshot: snap([node('p', { role: 'primary' }), node('r1', { lagSeconds: 0.5 })]) }), { node: 'p', reason: 'lag_fallback' }],
    ['causal: replica behind the session write -> primary', input({ session: { causalPosition: 200n } }), { node: 'p', reason: 'causal' }],
    ['causal: replica caught up -> replica', input({ session: { causalPosition: 50n } }), { node: /^r/, reason: 'causal' }],
    ['eventual ignores the session position', input({ routing: { ...routing, consistency: 'eventual' }, session: { causalPosition: 200n } }), { node: /^r/, reason: 'classified' }],
    ['read-only listener sends a write to a replica', input({ cls: 'write', listener: 'ro' }), { node: /^r/, reason: 'read_only_listener' }],
    ['read-only listener never falls back to the primary for a write', input({ cls: 'write', listener: 'ro', snapshot: snap([node('p', { role: 'primary' })]) }), { error: 'SWITCHYARD_NO_REPLICA' }],
    ['drained replica is skipped', input({ snapshot: snap([node('p', { role: 'primary' }), node('r1', { drained: true }), node('r2')]) }), { node: 'r2' }],
    ['zero-weight replica is skipped', input({ snapshot: snap([node('p', { role: 'primary' }), node('r1', { weight: 0 }), node('r2')]) }), { node: 'r2' }],
    ['primary_reads only primary left', input({ routing: { ...routing, primary_reads: 1 }, snapshot: snap([node('p', { role: 'primary' })]) }), { node: 'p', reason: 'primary_reads' }],
  ];
  it.each(cases)('%s', (_name, inp, want) => {
    const d = new Router().route(inp);
    if (want.error) {
      expect(d.ok).toBe(false);
      if (!d.ok) expect(d.error).toBe(want.error);
      return;
    }
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    if (want.node instanceof RegExp) expect(d.node).toMatch(want.node);
    else if (want.node) expect(d.node).toBe(want.node);
    if (want.target) expect(d.target).toBe(want.target);
    if (want.reason) expect(d.reason).toBe(want.reason);
  });

  it('primary_reads weights the primary among readers', () => {
    const r = new Router();
    const counts: Record<string, number> = {};
    for (let i = 0; i < 300; i++) {
      const d = r.route(input({ routing: { ...routing, primary_reads: 1 } }));
      if (d.ok) counts[d.node] = (counts[d.node] ?? 0) + 1;
    }
    expect(counts).toEqual({ p: 100, r1: 100, r2: 100 });
  });

  it('never sends a write to a replica on the read/write listener (property)', () => {
    const nodeArb = fc.record({
      role: fc.constantFrom('primary', 'replica', 'unknown'),
      up: fc.boolean(),
      drained: fc.boolean(),
      weight: fc.integer({ min: 0, max: 5 }),
      lagBytes: fc.option(fc.integer({ min: 0, max: 5000 })),
      lagSeconds: fc.option(fc.double({ min: 0, max: 5, noNaN: true })),
    });
    fc.assert(
      fc.property(fc.array(nodeArb, { minLength: 1, maxLength: 5 }), fc.constantFrom('primary', 'replica', undefined), fc.boolean(), (nodes, hint, pinned) => {
        const ns = nodes.map((n, i) => node(`n${i}`, { ...n, role: n.role as NodeState['role'] }));
        const primaries = ns.filter((n) => n.role === 'primary' && n.up);
        const s = snap(ns, { primary: primaries.length === 1 ? primaries[0]!.name : null, splitBrain: primaries.length > 1 });
        const d = new Router().route(input({ cls: 'write', hints: { route: hint }, snapshot: s, session: pinned && s.primary ? { pinnedNode: s.primary } : {} }));
        if (d.ok) {
          expect(d.node).toBe(s.primary);
          expect(d.target).toBe('primary');
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('SmoothWeightedBalancer', () => {
  it('splits 2:1 exactly and smoothly', () => {
    const b = new SmoothWeightedBalancer();
    const seq: string[] = [];
    for (let i = 0; i < 3000; i++) seq.push(b.pick([{ name: 'a', weight: 2 }, { name: 'b', weight: 1 }])!);
    expect(seq.filter((x) => x === 'a')).toHaveLength(2000);
    expect(seq.join('')).not.toMatch(/aaa|bb/);
  });
  it('counts are exact over N * sum(weights) picks for any weights (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 10 }), { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 5 }), (weights, rounds) => {
        const b = new SmoothWeightedBalancer();
        const cands = weights.map((w, i) => ({ name: `n${i}`, weight: w }));
        const sum = weights.reduce((x, y) => x + y, 0);
        const counts = new Map<string, number>();
        for (let i = 0; i < rounds * sum; i++) {
          const p = b.pick(cands)!;
          counts.set(p, (counts.get(p) ?? 0) + 1);
        }
        cands.forEach((c) => expect(counts.get(c.name) ?? 0).toBe(c.weight * rounds));
        if (sum === 0) expect(b.pick(cands)).toBeUndefined();
      }),
    );
  });
  it('adapts when candidates change', () => {
    const b = new SmoothWeightedBalancer();
    for (let i = 0; i < 10; i++) b.pick([{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }]);
    const seq = Array.from({ length: 4 }, () => b.pick([{ name: 'b', weight: 1 }, { name: 'c', weight: 1 }]));
    expect(seq.filter((x) => x === 'c')).toHaveLength(2);
  });
});

describe('replicaEligibility and LSNs', () => {
  const budget = { bytes: 100, timeMs: 1000 };
  it.each([
    [node('r'), true, undefined],
    [node('r', { up: false }), false, 'down'],
    [node('r', { drained: true }), false, 'drained'],
    [node('r', { role: 'primary' }), false, 'not_replica'],
    [node('r', { weight: 0 }), false, 'zero_weight'],
    [node('r', { lagBytes: 101 }), false, 'lag_bytes'],
    [node('r', { lagSeconds: 1.5 }), false, 'lag_time'],
    [node('r', { lagBytes: null }), false, 'lag_unknown'],
    [node('r', { lagBytes: 100, lagSeconds: 1 }), true, undefined],
  ] as const)('%#', (n, eligible, reason) => {
    expect(replicaEligibility(n, budget)).toEqual(reason ? { eligible, reason } : { eligible });
  });
  it('parses and formats LSNs', () => {
    expect(parseLsn('16/B374D848')).toBe(0x16b374d848n);
    expect(formatLsn(0x16b374d848n)).toBe('16/B374D848');
    expect(() => parseLsn('nope')).toThrow();
  });
});
