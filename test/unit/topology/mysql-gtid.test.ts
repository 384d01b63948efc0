import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  formatGtidPos,
  gtidCovers,
  gtidDistance,
  gtidMax,
  gtidTotal,
  gtidWatermark,
  parseMariaGtidPos,
  parseMysqlGtidRequirement,
  parseMysqlGtidSet,
  type GtidPos,
  type GtidSample,
} from '../../../src/topology/gtid.js';

const pos = (o: Record<string, number | bigint>): GtidPos => new Map(Object.entries(o).map(([k, v]) => [k, BigInt(v)]));
const U1 = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
const U2 = '4f22ab58-82db-22f2-af44-d91bb0530673';

describe('parseMariaGtidPos', () => {
  it.each([
    ['', {}],
    ['   ', {}],
    ['0-1-100', { '0': 100 }],
    ['0-1-100,1-2-7', { '0': 100, '1': 7 }],
    ['0-1-100,\n1-2-7', { '0': 100, '1': 7 }],
    [' 0-1-100 , 5-3-0 ', { '0': 100, '5': 0 }],
    ['4294967295-4294967295-18446744073709551615', { '4294967295': 18446744073709551615n }],
  ])('%j', (text, expected) => {
    expect(parseMariaGtidPos(text)).toEqual(pos(expected));
  });

  it.each([
    ['0-1', /domain-server-seq/],
    ['0-1-x', /domain-server-seq/],
    ['0-1-100,', /domain-server-seq/],
    ['-1-1-1', /domain-server-seq/],
    ['0-1-100,0-2-101', /domain 0 appears twice/],
    ['4294967296-1-1', /32-bit/],
    ['0-1-18446744073709551616', /64-bit/],
  ])('refuses %j', (text, why) => {
    expect(() => parseMariaGtidPos(text)).toThrow(why);
  });

  it('round-trips through formatGtidPos (server ids are not kept)', () => {
    const domain = fc.integer({ min: 0, max: 0xffffffff });
    const seq = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
    fc.assert(
      fc.property(fc.dictionary(domain.map(String), seq), (d) => {
        const p = new Map(Object.entries(d));
        expect(parseMariaGtidPos(formatGtidPos(p))).toEqual(p);
      }),
    );
  });

  it('never throws anything but its own error on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        try {
          parseMariaGtidPos(s);
        } catch (e) {
          expect((e as Error).message).toMatch(/^invalid GTID position/);
        }
      }),
    );
  });
});

describe('parseMysqlGtidSet (end of the run from 1 per UUID)', () => {
  it.each([
    ['', {}],
    [`${U1}:1-100`, { [U1]: 100 }],
    [`${U1.toUpperCase()}:1-5`, { [U1]: 5 }],
    [`${U1}:1-100:101-150`, { [U1]: 150 }],
    [`${U1}:1-100:102-150`, { [U1]: 100 }], // 101 missing: only 1-100 count
    [`${U1}:5-10`, { [U1]: 0 }],
    [`${U1}:1,\n${U2}:1-3:4`, { [U1]: 1, [U2]: 4 }],
    [`${U1}:3-9:1-2`, { [U1]: 9 }],
  ])('%j', (text, expected) => {
    expect(parseMysqlGtidSet(text)).toEqual(pos(expected));
  });

  it('formatGtidPos output parses back to the same position (a UUID at 0 is left out)', () => {
    const seq = fc.bigInt({ min: 0n, max: 1n << 62n });
    fc.assert(
      fc.property(fc.record({ a: seq, b: seq }), ({ a, b }) => {
        const p = new Map([
          [U1, a],
          [U2, b],
        ]);
        const back = parseMysqlGtidSet(formatGtidPos(p));
        for (const [k, v] of p) expect(back.get(k) ?? 0n).toBe(v);
      }),
    );
  });

  it.each([[`nope:1-2`], [`${U1}`], [`${U1}:0-3`], [`${U1}:5-3`], [`${U1}:tag:1-3`]])('refuses %j', (text) => {
    expect(() => parseMysqlGtidSet(text)).toThrow(/invalid GTID position/);
  });
});

describe('parseMysqlGtidRequirement (what a replica must have applied)', () => {
  it.each([
    [`${U1}:57`, { [U1]: 57 }],
    [`${U1}:1-100:102-150`, { [U1]: 150 }],
    [`${U1}:3,${U2}:9-12`, { [U1]: 3, [U2]: 12 }],
  ])('%j', (text, expected) => {
    expect(parseMysqlGtidRequirement(text)).toEqual(pos(expected));
  });
  it('a commit uuid:N is covered only by a replica that applied 1..N', () => {
    const need = parseMysqlGtidRequirement(`${U1}:57`);
    expect(gtidCovers(parseMysqlGtidSet(`${U1}:1-57`), need)).toBe(true);
    expect(gtidCovers(parseMysqlGtidSet(`${U1}:1-56`), need)).toBe(false);
    expect(gtidCovers(parseMysqlGtidSet(`${U1}:1-40:42-60`), need)).toBe(false);
    // parseMysqlGtidSet would read a lone `uuid:57` as "nothing from 1": never use it for a requirement.
    expect(parseMysqlGtidSet(`${U1}:57`).get(U1)).toBe(0n);
  });
});

describe('comparison and distance', () => {
  it.each([
    [{ '0': 10 }, { '0': 10 }, true, 0],
    [{ '0': 11 }, { '0': 10 }, true, 0],
    [{ '0': 9 }, { '0': 10 }, false, 1],
    [{}, { '0': 10 }, false, 10],
    [{ '0': 10 }, {}, true, 0],
    [{ '0': 10 }, { '0': 0 }, true, 0],
    [{ '0': 100, '1': 3 }, { '0': 90, '1': 5 }, false, 2],
    [{ '0': 100 }, { '0': 90, '1': 5 }, false, 5],
    [{ '0': 100, '1': 5 }, { '0': 90, '1': 5 }, true, 0],
  ])('replica %j, primary %j: covers=%s, behind by %d', (replica, primary, covers, behind) => {
    expect(gtidCovers(pos(replica), pos(primary))).toBe(covers);
    expect(gtidDistance(pos(primary), pos(replica))).toBe(BigInt(behind));
  });

  const gtid = fc.dictionary(fc.constantFrom('0', '1', '2', '7'), fc.bigInt({ min: 0n, max: 1n << 40n })).map((d) => new Map(Object.entries(d)) as GtidPos);

  it('covers <=> distance is zero; max covers both; total grows by the distance', () => {
    fc.assert(
      fc.property(gtid, gtid, (a, b) => {
        expect(gtidCovers(a, b)).toBe(gtidDistance(b, a) === 0n);
        const m = gtidMax(a, b);
        expect(gtidCovers(m, a) && gtidCovers(m, b)).toBe(true);
        expect(gtidTotal(m) - gtidTotal(a)).toBe(gtidDistance(b, a));
      }),
    );
  });
});

describe('gtidWatermark (a replica on the primary history chain)', () => {
  const history: GtidSample[] = [
    { at: 1000, position: 10n, gtid: pos({ '0': 10 }) },
    { at: 1100, position: 15n, gtid: pos({ '0': 12, '1': 3 }) },
    { at: 1200, position: 20n, gtid: pos({ '0': 17, '1': 3 }) },
    { at: 1300, position: 26n, gtid: pos({ '0': 17, '1': 9 }) },
  ];
  it.each([
    [{ '0': 5 }, 0n],
    [{ '0': 10 }, 10n],
    [{ '0': 16, '1': 3 }, 15n],
    // The sum (17 + 1 = 18) passes sample 15's, but domain 1 is behind it: the watermark stays at 10.
    [{ '0': 17, '1': 1 }, 10n],
    [{ '0': 17, '1': 8 }, 20n],
    [{ '0': 17, '1': 9 }, 26n],
    [{ '0': 30, '1': 30 }, 26n],
  ])('%j -> %s', (replayed, expected) => {
    expect(gtidWatermark(history, pos(replayed))).toBe(expected);
  });

  it('read-your-writes: watermark >= a sample position <=> the replica has applied that sample', () => {
    const step = fc.tuple(fc.constantFrom('0', '1', '2'), fc.integer({ min: 1, max: 5 }));
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 30 }), fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 3, maxLength: 3 }), (steps, r) => {
        // A chain of primary positions, each one committing on one domain.
        const chain: GtidSample[] = [];
        const cur = new Map<string, bigint>();
        steps.forEach(([d, n], i) => {
          cur.set(d, (cur.get(d) ?? 0n) + BigInt(n));
          chain.push({ at: i, position: gtidTotal(cur), gtid: new Map(cur) });
        });
        const replayed = pos({ '0': r[0]!, '1': r[1]!, '2': r[2]! });
        const w = gtidWatermark(chain, replayed);
        for (const s of chain) expect(w >= s.position).toBe(gtidCovers(replayed, s.gtid));
      }),
    );
  });
});
