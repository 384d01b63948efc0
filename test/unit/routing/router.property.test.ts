import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Router, type RouteInput } from '../../../src/routing/router.js';
import { replicaEligibility } from '../../../src/routing/eligibility.js';
import type { NodeState, TopologySnapshot } from '../../../src/routing/topology.js';

const nodeArb = fc.record({
  role: fc.constantFrom<NodeState['role']>('primary', 'replica', 'unknown'),
  up: fc.boolean(),
  drained: fc.boolean(),
  weight: fc.integer({ min: 0, max: 5 }),
  lagBytes: fc.option(fc.integer({ min: 0, max: 5000 })),
  lagSeconds: fc.option(fc.double({ min: 0, max: 5, noNaN: true })),
  replayPosition: fc.option(fc.bigInt({ min: 0n, max: 1000n })),
});

/** Any snapshot, including inconsistent ones (primary naming a replica, split brain with a primary). */
const snapshotArb: fc.Arbitrary<TopologySnapshot> = fc
  .record({
    nodes: fc.array(nodeArb, { minLength: 0, maxLength: 6 }),
    primaryIndex: fc.option(fc.integer({ min: 0, max: 6 })),
    splitBrain: fc.boolean(),
  })
  .map(({ nodes, primaryIndex, splitBrain }) => {
    const states: NodeState[] = nodes.map((n, i) => ({ name: `n${i}`, host: '127.0.0.1', port: 5432 + i, ...n }));
    return { cluster: 'c', version: 1, takenAt: 0, nodes: states, primary: primaryIndex === null ? null : `n${primaryIndex}`, splitBrain };
  });

const inputArb = (cls: fc.Arbitrary<'read' | 'write'>, listener: fc.Arbitrary<'rw' | 'ro'>): fc.Arbitrary<RouteInput> =>
  fc.record({
    statement: fc.record({
      class: cls,
      hints: fc.record({ route: fc.constantFrom<'primary' | 'replica' | undefined>('primary', 'replica', undefined), maxLagMs: fc.option(fc.integer({ min: 0, max: 10_000 }), { nil: undefined }) }),
    }),
    listener,
    snapshot: snapshotArb,
    routing: fc.record({
      primary_reads: fc.integer({ min: 0, max: 3 }),
      max_replica_lag: fc.record({ bytes: fc.integer({ min: 1, max: 5000 }), time: fc.integer({ min: 1, max: 5000 }) }),
      when_no_replica: fc.constantFrom<'primary' | 'error'>('primary', 'error'),
      consistency: fc.constantFrom<'eventual' | 'causal'>('eventual', 'causal'),
    }),
    session: fc.record({ causalPosition: fc.option(fc.bigInt({ min: 0n, max: 1000n })) }),
  });

describe('Router properties', () => {
  it('never sends an unpinned write on the read/write listener anywhere but the primary', () => {
    fc.assert(
      fc.property(inputArb(fc.constant('write'), fc.constant('rw')), fc.integer({ min: 1, max: 4 }), (inp, repeats) => {
        const router = new Router();
        for (let i = 0; i < repeats; i++) {
          const d = router.route(inp);
          if (d.ok) {
            expect(d).toEqual({ ok: true, node: inp.snapshot.primary, target: 'primary', reason: 'classified' });
            expect(inp.snapshot.splitBrain).toBe(false);
          } else {
            expect(d.error).toBe(inp.snapshot.splitBrain ? 'SWITCHYARD_SPLIT_BRAIN' : 'SWITCHYARD_NO_PRIMARY');
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('a read on a replica always lands on an eligible, caught-up replica', () => {
    fc.assert(
      fc.property(inputArb(fc.constant('read'), fc.constantFrom('rw', 'ro')), (inp) => {
        const d = new Router().route(inp);
        if (!d.ok) return;
        const n = inp.snapshot.nodes.find((x) => x.name === d.node);
        if (d.target === 'primary') {
          expect(d.node).toBe(inp.snapshot.primary);
          return;
        }
        const budget = { bytes: inp.routing.max_replica_lag.bytes, timeMs: inp.statement.hints.maxLagMs ?? inp.routing.max_replica_lag.time };
        expect(n && replicaEligibility(n, budget).eligible).toBe(true);
        const pos = inp.session.causalPosition;
        if (inp.listener === 'rw' && inp.routing.consistency === 'causal' && pos != null) expect(n!.replayPosition! >= pos).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('the read-only listener never sends a write to the primary', () => {
    fc.assert(
      fc.property(inputArb(fc.constant('write'), fc.constant('ro')), (inp) => {
        const d = new Router().route(inp);
        if (d.ok) expect(d).toMatchObject({ target: 'replica', reason: 'read_only_listener' });
        else expect(d.error).toBe('SWITCHYARD_NO_REPLICA');
      }),
      { numRuns: 1000 },
    );
  });

  it('a pinned session always gets its node', () => {
    fc.assert(
      fc.property(inputArb(fc.constantFrom('read', 'write'), fc.constantFrom('rw', 'ro')), fc.string({ minLength: 1, maxLength: 4 }), (inp, pinned) => {
        const d = new Router().route({ ...inp, session: { ...inp.session, pinnedNode: pinned } });
        expect(d).toMatchObject({ ok: true, node: pinned, reason: 'pinned' });
      }),
      { numRuns: 500 },
    );
  });
});
