import { describe, expect, it } from 'vitest';
import { buildSnapshot, type NodeHealth } from '../../../src/topology/decide.js';
import { gtidTotal, gtidWatermark, type GtidPos, type GtidSample } from '../../../src/topology/gtid.js';
import { refineWithGtid } from '../../../src/topology/mysql-decide.js';

const pos = (o: Record<string, number>): GtidPos => new Map(Object.entries(o).map(([k, v]) => [k, BigInt(v)]));

/** The monitor's publish step, on fixed inputs: scalar positions for decide.ts, then the GTID refinement. */
function snapshot(opts: { positions: Record<string, GtidPos>; roles: Record<string, 'primary' | 'replica'>; history: GtidSample[]; sbm?: Record<string, number | null>; now: number }) {
  const names = Object.keys(opts.roles);
  const nodes = names.map((name, i) => ({ name, host: 'h', port: i + 1, weight: 1 }));
  const primaries = names.filter((n) => opts.roles[n] === 'primary');
  const primary = primaries.length === 1 ? primaries[0] : null;
  const health = new Map<string, NodeHealth>();
  for (const n of names) {
    const g = opts.positions[n]!;
    health.set(n, { up: true, streak: 0, role: opts.roles[n]!, position: n === primary ? gtidTotal(g) : gtidWatermark(opts.history, g) });
  }
  const inputs = { cluster: 'c', nodes, staticPrimary: null, fall: 3, rise: 2, drained: new Set<string>() };
  const snap = buildSnapshot(inputs, health, opts.history, 1, opts.now);
  return refineWithGtid(snap, {
    positions: new Map(Object.entries(opts.positions)),
    secondsBehind: new Map(Object.entries(opts.sbm ?? {})),
    history: opts.history,
  });
}

const sample = (at: number, g: Record<string, number>): GtidSample => ({ at, position: gtidTotal(pos(g)), gtid: pos(g) });

describe('refineWithGtid', () => {
  const history = [sample(1000, { '0': 10 }), sample(1100, { '0': 12, '1': 3 }), sample(1200, { '0': 17, '1': 3 }), sample(1300, { '0': 17, '1': 9 })];
  const roles = { p: 'primary', a: 'replica', b: 'replica', c: 'replica' } as const;

  it('lag in transactions per domain, lag time from the history, positions as text', () => {
    const s = snapshot({
      roles,
      history,
      now: 1500,
      positions: { p: pos({ '0': 17, '1': 9 }), a: pos({ '0': 17, '1': 9 }), b: pos({ '0': 17, '1': 1 }), c: pos({ '0': 16, '1': 3 }) },
      sbm: { a: 0, b: 0, c: 0 },
    });
    const by = (n: string) => s.nodes.find((x) => x.name === n)!;
    expect(by('p')).toMatchObject({ lagBytes: null, lagSeconds: null, replayGtid: '0-0-17,1-0-9', replayPosition: 26n, secondsBehindSource: null });
    expect(by('a')).toMatchObject({ lagBytes: 0, lagSeconds: 0, replayPosition: 26n });
    // b: 8 transactions behind in domain 1; first sample it lacks is the one at 1100.
    expect(by('b')).toMatchObject({ lagBytes: 8, lagSeconds: 0.4, replayPosition: 10n, replayGtid: '0-0-17,1-0-1' });
    // c: 1 + 6 behind; first sample it lacks is 1200.
    expect(by('c')).toMatchObject({ lagBytes: 7, lagSeconds: 0.3, replayPosition: 15n });
  });

  it('Seconds_Behind_Master raises lag time only when the replica is older than the whole history', () => {
    const positions = { p: pos({ '0': 17, '1': 9 }), a: pos({ '0': 5 }), b: pos({ '0': 17, '1': 1 }), c: pos({ '0': 16, '1': 3 }) };
    const s = snapshot({ roles, history, now: 1500, positions, sbm: { a: 42, b: 42, c: null } });
    const by = (n: string) => s.nodes.find((x) => x.name === n)!;
    expect(by('a')).toMatchObject({ lagSeconds: 42, lagBytes: 21, secondsBehindSource: 42 });
    expect(by('b')).toMatchObject({ lagSeconds: 0.4, secondsBehindSource: 42 });
    expect(by('c')).toMatchObject({ lagSeconds: 0.3, secondsBehindSource: null });
  });

  it('with no primary, lag is measured against the last position seen', () => {
    const s = snapshot({ roles: { a: 'replica', b: 'replica' }, history, now: 1500, positions: { a: pos({ '0': 17, '1': 9 }), b: pos({ '0': 17, '1': 7 }) } });
    expect(s.primary).toBeNull();
    expect(s.nodes.map((n) => [n.lagBytes, n.lagSeconds])).toEqual([
      [0, 0],
      [2, 0.2],
    ]);
  });

  it('split brain: no lag at all', () => {
    const s = snapshot({ roles: { a: 'primary', b: 'primary', c: 'replica' }, history, now: 1500, positions: { a: pos({ '0': 17 }), b: pos({ '0': 17 }), c: pos({ '0': 1 }) } });
    expect(s.splitBrain).toBe(true);
    expect(s.nodes.every((n) => n.lagBytes === null && n.lagSeconds === null)).toBe(true);
  });
});
