import { describe, expect, it } from 'vitest';
import { buildSnapshot, lagSeconds, nextHealth, pushSample, type NodeHealth, type PositionSample } from '../../../src/topology/decide.js';

describe('nextHealth (fall/rise)', () => {
  const up: NodeHealth = { up: true, streak: 0, role: 'replica', position: 10n };
  it('first probe decides at once', () => {
    expect(nextHealth(undefined, { name: 'a', ok: false, error: 'x' }, 3, 2).up).toBe(false);
    expect(nextHealth(undefined, { name: 'a', ok: true, writable: true, position: 5n }, 3, 2)).toMatchObject({ up: true, role: 'primary' });
  });
  it('goes down only after `fall` failures in a row', () => {
    let h = up;
    for (let i = 1; i <= 2; i++) {
      h = nextHealth(h, { name: 'a', ok: false }, 3, 2);
      expect(h.up).toBe(true);
    }
    h = nextHealth(h, { name: 'a', ok: false }, 3, 2);
    expect(h.up).toBe(false);
    expect(h.role).toBe('replica'); // last known role kept while down
  });
  it('a success in between resets the count', () => {
    let h = nextHealth(up, { name: 'a', ok: false }, 2, 2);
    h = nextHealth(h, { name: 'a', ok: true, writable: false, position: 11n }, 2, 2);
    h = nextHealth(h, { name: 'a', ok: false }, 2, 2);
    expect(h.up).toBe(true);
  });
  it('comes back only after `rise` successes', () => {
    let h: NodeHealth = { up: false, streak: 0, role: 'replica', position: null };
    h = nextHealth(h, { name: 'a', ok: true, writable: false, position: 1n }, 3, 2);
    expect(h.up).toBe(false);
    h = nextHealth(h, { name: 'a', ok: true, writable: false, position: 1n }, 3, 2);
    expect(h.up).toBe(true);
  });
});

describe('lagSeconds', () => {
  const history: PositionSample[] = [
    { at: 1000, position: 100n },
    { at: 2000, position: 200n },
    { at: 3000, position: 300n },
  ];
  it.each([
    [300n, 3500, 0],
    [350n, 3500, 0],
    [250n, 3500, 0.5],
    [150n, 3500, 1.5],
    [50n, 3500, 2.5],
  ])('replayed %s at %s -> %s s', (pos, now, want) => {
    expect(lagSeconds(history, pos, now)).toBeCloseTo(want, 6);
  });
  it('is null without history', () => expect(lagSeconds([], 1n, 0)).toBeNull());
});

describe('pushSample', () => {
  it('records movement only and forgets samples older than the window', () => {
    const h: PositionSample[] = [];
    pushSample(h, { at: 0, position: 1n }, 1000);
    pushSample(h, { at: 100, position: 1n }, 1000);
    expect(h).toHaveLength(1);
    for (let t = 200; t <= 5000; t += 100) pushSample(h, { at: t, position: BigInt(t) }, 1000);
    expect(h[1]!.at).toBeGreaterThanOrEqual(4000);
    expect(h.length).toBeLessThanOrEqual(12);
  });
});

describe('buildSnapshot', () => {
  const nodes = [
    { name: 'a', host: 'h', port: 1, weight: 1 },
    { name: 'b', host: 'h', port: 2, weight: 1 },
  ];
  const inputs = { cluster: 'c', nodes, staticPrimary: null, fall: 3, rise: 2, drained: new Set<string>() };
  it('finds the one writable node and measures replica lag in bytes', () => {
    const health = new Map<string, NodeHealth>([
      ['a', { up: true, streak: 0, role: 'primary', position: 1000n }],
      ['b', { up: true, streak: 0, role: 'replica', position: 400n }],
    ]);
    const s = buildSnapshot(inputs, health, [{ at: 0, position: 1000n }], 1, 10);
    expect(s.primary).toBe('a');
    expect(s.splitBrain).toBe(false);
    expect(s.nodes[1]).toMatchObject({ role: 'replica', lagBytes: 600 });
  });
  it('reports split brain with two writable nodes and no primary', () => {
    const health = new Map<string, NodeHealth>([
      ['a', { up: true, streak: 0, role: 'primary', position: 1n }],
      ['b', { up: true, streak: 0, role: 'primary', position: 1n }],
    ]);
    const s = buildSnapshot(inputs, health, [], 1, 10);
    expect(s.primary).toBeNull();
    expect(s.splitBrain).toBe(true);
  });
  it('has no primary when the writable node is down', () => {
    const health = new Map<string, NodeHealth>([
      ['a', { up: false, streak: 0, role: 'primary', position: 1n }],
      ['b', { up: true, streak: 0, role: 'replica', position: 1n }],
    ]);
    expect(buildSnapshot(inputs, health, [], 1, 10).primary).toBeNull();
  });
  it('takes static roles from config', () => {
    const health = new Map<string, NodeHealth>([
      ['a', { up: true, streak: 0, role: 'replica', position: 1n }],
      ['b', { up: true, streak: 0, role: 'replica', position: 1n }],
    ]);
    const s = buildSnapshot({ ...inputs, staticPrimary: 'b' }, health, [], 1, 10);
    expect(s.primary).toBe('b');
    expect(s.nodes.map((n) => n.role)).toEqual(['replica', 'primary']);
  });
});
