import { describe, expect, it } from 'vitest';
import { buildSnapshot, nextHealth, type NodeHealth } from '../../../src/topology/decide.js';

describe('a refused connection counts at once', () => {
  const up: NodeHealth = { up: true, streak: 0, role: 'replica', position: 10n };
  it('one refused check takes an up node down, whatever fall is', () => {
    for (const fall of [1, 3, 10]) expect(nextHealth(up, { name: 'a', ok: false, refused: true }, fall, 2)).toMatchObject({ up: false, streak: 0 });
  });
  it('a plain failure (timeout) still needs fall checks', () => {
    expect(nextHealth(up, { name: 'a', ok: false, error: 'no answer within 300ms' }, 3, 2).up).toBe(true);
  });
  it('a down node still needs rise successes to come back', () => {
    const down = nextHealth(up, { name: 'a', ok: false, refused: true }, 3, 2);
    expect(nextHealth(down, { name: 'a', ok: true, writable: false, position: 11n }, 3, 2).up).toBe(false);
  });
});

describe('buildSnapshot sampledAt', () => {
  const inputs = { cluster: 'c', nodes: [{ name: 'p', host: 'h', port: 1, weight: 1 }], staticPrimary: null, fall: 3, rise: 2, drained: new Set<string>() };
  const health = new Map<string, NodeHealth>([['p', { up: true, streak: 0, role: 'primary', position: 5n }]]);
  it('carries the start of the probe round (defaults to now)', () => {
    expect(buildSnapshot(inputs, health, [], 1, 1000, 900).sampledAt).toBe(900);
    expect(buildSnapshot(inputs, health, [], 1, 1000).sampledAt).toBe(1000);
  });
});

describe('lag with no primary (failover under way)', () => {
  const inputs = {
    cluster: 'c',
    nodes: [
      { name: 'p', host: 'h', port: 1, weight: 1 },
      { name: 'r', host: 'h', port: 2, weight: 1 },
    ],
    staticPrimary: null,
    fall: 3,
    rise: 2,
    drained: new Set<string>(),
  };
  const history = [{ at: 1000, position: 100n }];
  it('is measured against the last known primary position: a caught-up replica reads as zero lag', () => {
    const health = new Map<string, NodeHealth>([
      ['p', { up: false, streak: 0, role: 'primary', position: 100n }],
      ['r', { up: true, streak: 0, role: 'replica', position: 100n }],
    ]);
    const snap = buildSnapshot(inputs, health, history, 1, 5000);
    expect(snap.primary).toBeNull();
    expect(snap.nodes[1]).toMatchObject({ lagBytes: 0, lagSeconds: 0 });
  });
  it('a replica behind that position still shows its lag', () => {
    const health = new Map<string, NodeHealth>([['r', { up: true, streak: 0, role: 'replica', position: 40n }]]);
    const snap = buildSnapshot(inputs, health, history, 1, 5000);
    expect(snap.nodes[1]).toMatchObject({ lagBytes: 60, lagSeconds: 4 });
  });
  it('split brain measures nothing', () => {
    const health = new Map<string, NodeHealth>([
      ['p', { up: true, streak: 0, role: 'primary', position: 100n }],
      ['r', { up: true, streak: 0, role: 'primary', position: 100n }],
    ]);
    expect(buildSnapshot(inputs, health, history, 1, 5000).nodes.every((n) => n.lagBytes === null)).toBe(true);
  });
});
