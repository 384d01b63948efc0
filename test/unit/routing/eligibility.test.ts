import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { replicaEligibility, type IneligibleReason, type LagBudget } from '../../../src/routing/eligibility.js';
import { formatLsn, parseLsn, staticSnapshot, type NodeState } from '../../../src/routing/topology.js';
import { SwitchyardError } from '../../../src/errors.js';
import { node, primaryNode } from './fixtures.js';

const budget: LagBudget = { bytes: 100, timeMs: 1000 };
const noLimit: LagBudget = { bytes: Infinity, timeMs: Infinity };

describe('replicaEligibility', () => {
  const cases: [string, NodeState, LagBudget, IneligibleReason | null][] = [
    ['healthy replica', node('r'), budget, null],
    ['exactly at both budgets', node('r', { lagBytes: 100, lagSeconds: 1 }), budget, null],
    ['down', node('r', { up: false }), budget, 'down'],
    ['down beats drained and lag', node('r', { up: false, drained: true, lagBytes: 1e9 }), budget, 'down'],
    ['drained', node('r', { drained: true }), budget, 'drained'],
    ['primary', primaryNode('p'), budget, 'not_replica'],
    ['unknown role', node('r', { role: 'unknown' }), budget, 'not_replica'],
    ['zero weight', node('r', { weight: 0 }), budget, 'zero_weight'],
    ['negative weight', node('r', { weight: -1 }), budget, 'zero_weight'],
    ['bytes over', node('r', { lagBytes: 101 }), budget, 'lag_bytes'],
    ['time over', node('r', { lagSeconds: 1.001 }), budget, 'lag_time'],
    ['both over: bytes first', node('r', { lagBytes: 101, lagSeconds: 5 }), budget, 'lag_bytes'],
    ['bytes unknown', node('r', { lagBytes: null }), budget, 'lag_unknown'],
    ['time unknown', node('r', { lagSeconds: null }), budget, 'lag_unknown'],
    ['time NaN counts as unknown', node('r', { lagSeconds: Number.NaN }), budget, 'lag_unknown'],
    ['bytes unknown but time over: the measured excess is named', node('r', { lagBytes: null, lagSeconds: 5 }), budget, 'lag_time'],
    ['both unknown', node('r', { lagBytes: null, lagSeconds: null }), budget, 'lag_unknown'],
    ['both unknown, infinite budget', node('r', { lagBytes: null, lagSeconds: null }), noLimit, null],
    ['huge lag, infinite budget', node('r', { lagBytes: 1e15, lagSeconds: 1e6 }), noLimit, null],
    ['bytes unknown, only bytes unlimited', node('r', { lagBytes: null }), { bytes: Infinity, timeMs: 1000 }, null],
    ['time unknown, only bytes unlimited', node('r', { lagSeconds: null }), { bytes: Infinity, timeMs: 1000 }, 'lag_unknown'],
    ['zero budget admits zero lag', node('r'), { bytes: 0, timeMs: 0 }, null],
    ['infinite budget still refuses a down replica', node('r', { up: false, lagBytes: null }), noLimit, 'down'],
  ];
  it.each(cases)('%s', (_name, n, b, reason) => {
    expect(replicaEligibility(n, b)).toEqual(reason === null ? { eligible: true } : { eligible: false, reason });
  });
});

describe('topology helpers', () => {
  it('staticSnapshot: config roles, all up, replicas at lag 0', () => {
    const s = staticSnapshot(
      'main',
      [
        { name: 'pg1', host: '127.0.0.1', port: 5432, weight: 1 },
        { name: 'pg2', host: '127.0.0.1', port: 5433, weight: 2 },
      ],
      'pg1',
      1234,
    );
    expect(s).toMatchObject({ cluster: 'main', takenAt: 1234, primary: 'pg1', splitBrain: false });
    expect(s.nodes.map((n) => [n.name, n.role, n.up, n.drained, n.weight, n.lagBytes, n.lagSeconds])).toEqual([
      ['pg1', 'primary', true, false, 1, null, null],
      ['pg2', 'replica', true, false, 2, 0, 0],
    ]);
    expect(replicaEligibility(s.nodes[1]!, budget)).toEqual({ eligible: true });
  });

  it('parses and formats LSNs as PostgreSQL prints them', () => {
    expect(parseLsn('16/B374D848')).toBe(0x16b374d848n);
    expect(parseLsn('0/0')).toBe(0n);
    expect(parseLsn('ffffffff/ffffffff')).toBe((1n << 64n) - 1n);
    expect(formatLsn(0x16b374d848n)).toBe('16/B374D848');
    expect(formatLsn(0x100000000n)).toBe('1/0');
  });

  it.each(['', 'nope', '1', '1/', '/1', '123456789/0', '0/123456789', '1/2/3', ' 1/2', '-1/2'])('rejects the LSN %j', (text) => {
    expect(() => parseLsn(text)).toThrow(SwitchyardError);
  });

  it('rejects positions outside 64 bits', () => {
    expect(() => formatLsn(-1n)).toThrow(SwitchyardError);
    expect(() => formatLsn(1n << 64n)).toThrow(SwitchyardError);
  });

  it('LSN text round-trips and keeps order (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (a, b) => {
        expect(parseLsn(formatLsn(a))).toBe(a);
        expect(parseLsn(formatLsn(a)) < parseLsn(formatLsn(b))).toBe(a < b);
      }),
    );
  });
});
