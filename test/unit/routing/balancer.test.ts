import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SmoothWeightedBalancer } from '../../../src/routing/balancer.js';

type Candidate = { name: string; weight: number };

function picks(b: SmoothWeightedBalancer, candidates: Candidate[], n: number): string[] {
  return Array.from({ length: n }, () => b.pick(candidates) ?? '-');
}

function counts(seq: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of seq) out[x] = (out[x] ?? 0) + 1;
  return out;
}

function longestRun(seq: string[], name: string): number {
  let best = 0;
  let run = 0;
  for (const x of seq) {
    run = x === name ? run + 1 : 0;
    best = Math.max(best, run);
  }
  return best;
}

const twoToOne = [
  { name: 'a', weight: 2 },
  { name: 'b', weight: 1 },
];

describe('SmoothWeightedBalancer', () => {
  it('splits 2:1 exactly and smoothly over 3000 picks', () => {
    const seq = picks(new SmoothWeightedBalancer(), twoToOne, 3000);
    expect(counts(seq)).toEqual({ a: 2000, b: 1000 });
    expect(longestRun(seq, 'a')).toBe(2);
    expect(longestRun(seq, 'b')).toBe(1);
  });

  it('matches nginx for weights 5:1:1', () => {
    const seq = picks(
      new SmoothWeightedBalancer(),
      [
        { name: 'a', weight: 5 },
        { name: 'b', weight: 1 },
        { name: 'c', weight: 1 },
      ],
      7,
    );
    expect(seq.join('')).toBe('aabacaa');
  });

  it('adapts when a candidate joins mid-way', () => {
    const b = new SmoothWeightedBalancer();
    const before = picks(b, twoToOne, 1500);
    expect(counts(before)).toEqual({ a: 1000, b: 500 });
    const after = picks(b, [...twoToOne, { name: 'c', weight: 1 }], 4000);
    // A full rotation is 4 picks; the state carried over shifts at most one pick per name.
    const c = counts(after);
    expect(Math.abs(c.a! - 2000)).toBeLessThanOrEqual(1);
    expect(Math.abs(c.b! - 1000)).toBeLessThanOrEqual(1);
    expect(Math.abs(c.c! - 1000)).toBeLessThanOrEqual(1);
    expect(longestRun(after, 'c')).toBe(1);
  });

  it('never picks a candidate that left', () => {
    const b = new SmoothWeightedBalancer();
    picks(b, [...twoToOne, { name: 'c', weight: 5 }], 10);
    const c = counts(picks(b, twoToOne, 300));
    expect(Object.keys(c).sort()).toEqual(['a', 'b']);
    // The leaver's credit is dropped with it, which may shift one pick of this window.
    expect(Math.abs(c.a! - 200)).toBeLessThanOrEqual(1);
    expect(c.a! + c.b!).toBe(300);
  });

  it('forgets a candidate that left, so it comes back with no credit', () => {
    const b = new SmoothWeightedBalancer();
    const ab = [
      { name: 'a', weight: 1 },
      { name: 'b', weight: 3 },
    ];
    expect(b.pick(ab)).toBe('b'); // b's value is now -1 and a's is 1
    expect(b.pick([{ name: 'a', weight: 1 }])).toBe('a'); // b leaves
    // Remembered at -1, b would tie with a (2 vs 2) and lose; forgotten, it starts at 0 and wins 3 to 2.
    expect(b.pick(ab)).toBe('b');
  });

  it('forgets a candidate whose weight dropped to 0', () => {
    const b = new SmoothWeightedBalancer();
    const ab = [
      { name: 'a', weight: 1 },
      { name: 'b', weight: 3 },
    ];
    expect(b.pick(ab)).toBe('b');
    expect(
      b.pick([
        { name: 'a', weight: 1 },
        { name: 'b', weight: 0 },
      ]),
    ).toBe('a');
    expect(b.pick(ab)).toBe('b');
  });

  it('never picks zero weights; all zero or no candidates gives undefined', () => {
    const b = new SmoothWeightedBalancer();
    expect(
      counts(
        picks(
          b,
          [
            { name: 'z', weight: 0 },
            { name: 'a', weight: 1 },
          ],
          10,
        ),
      ),
    ).toEqual({ a: 10 });
    expect(b.pick([{ name: 'z', weight: 0 }])).toBeUndefined();
    expect(b.pick([])).toBeUndefined();
    expect(b.pick([{ name: 'n', weight: Number.NaN }])).toBeUndefined();
  });

  it('reset starts the rotation over', () => {
    const b = new SmoothWeightedBalancer();
    const first = picks(b, twoToOne, 3);
    b.pick(twoToOne);
    b.reset();
    expect(picks(b, twoToOne, 3)).toEqual(first);
  });

  it('gives exact counts over N * sum(weights) picks for any weights (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 10 }), { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 5 }), (weights, rounds) => {
        const b = new SmoothWeightedBalancer();
        const cands = weights.map((w, i) => ({ name: `n${i}`, weight: w }));
        const sum = weights.reduce((x, y) => x + y, 0);
        const got = counts(picks(b, cands, rounds * sum));
        for (const c of cands) expect(got[c.name] ?? 0).toBe(c.weight * rounds);
        if (sum === 0) expect(b.pick(cands)).toBeUndefined();
      }),
    );
  });

  it('spreads two candidates evenly: the heavier runs at most ceil(heavy/light) in a row, the lighter never twice (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 20 }), (w1, w2) => {
        const [heavy, light] = w1 >= w2 ? [w1, w2] : [w2, w1];
        const cands = [
          { name: 'h', weight: heavy },
          { name: 'l', weight: light },
        ];
        const seq = picks(new SmoothWeightedBalancer(), cands, 3 * (heavy + light));
        expect(longestRun(seq, 'h')).toBeLessThanOrEqual(Math.ceil(heavy / light));
        if (heavy > light) expect(longestRun(seq, 'l')).toBe(1);
      }),
    );
  });
});
