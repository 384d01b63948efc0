import { describe, expect, it } from 'vitest';
import { CausalTracker, ON_PRIMARY, type PositionView } from '../../../src/frontend/causal.js';

function view(sampledAt: number | undefined, primaryPos: bigint | null, primary: string | null = 'p'): PositionView {
  return { primary, sampledAt, nodes: [{ name: 'p', replayPosition: primaryPos }, { name: 'r', replayPosition: 1n }] };
}

describe('CausalTracker (read-your-writes)', () => {
  const clock = (t: { now: number }) => () => t.now;

  it('no write: no requirement', () => {
    const c = new CausalTracker(() => 0);
    expect(c.required(view(10, 100n))).toBeNull();
  });

  it('a read batch on the primary does not create a requirement', () => {
    const c = new CausalTracker(() => 5);
    c.begin(false);
    c.settle();
    expect(c.required(view(10, 100n))).toBeNull();
  });

  const cases: [string, number | undefined, bigint | null, string | null, bigint][] = [
    // name, sampledAt, primary position, primary, expected (write settled at t=100)
    ['round started before the commit: primary', 50, 500n, 'p', ON_PRIMARY],
    ['round started in the same millisecond: primary', 100, 500n, 'p', ON_PRIMARY],
    ['round started after: its position', 101, 500n, 'p', 500n],
    ['no primary in the snapshot: primary', 200, 500n, null, ON_PRIMARY],
    ['primary position unknown: primary', 200, null, 'p', ON_PRIMARY],
    ['static snapshot without sampledAt: primary', undefined, 500n, 'p', ON_PRIMARY],
  ];
  for (const [name, at, pos, primary, expected] of cases) {
    it(name, () => {
      const t = { now: 100 };
      const c = new CausalTracker(clock(t));
      c.begin(true);
      c.settle();
      expect(c.required(view(at, pos, primary))).toBe(expected);
    });
  }

  it('the position is kept for later reads and only moves forward', () => {
    const t = { now: 100 };
    const c = new CausalTracker(clock(t));
    c.begin(true);
    c.settle();
    expect(c.required(view(101, 500n))).toBe(500n);
    expect(c.required(view(300, 900n))).toBe(500n); // no new write: same requirement
    t.now = 400;
    c.begin(true);
    c.settle();
    expect(c.required(view(401, 450n))).toBe(500n); // never backwards (e.g. a stale primary sample)
  });

  it('inside a transaction nothing is recorded until ReadyForQuery I (settle)', () => {
    const c = new CausalTracker(() => 100);
    c.begin(true);
    expect(c.required(view(200, 500n))).toBeNull(); // not committed yet: nothing to wait for
    c.settle();
    expect(c.required(view(200, 500n))).toBe(500n);
  });
});
