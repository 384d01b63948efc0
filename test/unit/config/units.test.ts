import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatDuration, formatSize, parseDuration, parseSize } from '../../../src/config/units.js';

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['10s', 10_000],
    ['1m', 60_000],
    ['1h', 3_600_000],
    ['0', 0],
    ['0s', 0],
    ['0ms', 0],
    ['1.5s', 1500],
    [' 2s ', 2000],
    [300, 300],
    [0, 0],
  ] as const)('%j is %d ms', (text, ms) => expect(parseDuration(text)).toEqual({ ok: true, ms }));

  it.each([
    ['10', /invalid duration "10"/],
    ['5x', /invalid duration "5x".*250ms, 10s, 1m/],
    ['-1s', /invalid duration/],
    ['s', /invalid duration/],
    ['', /invalid duration/],
    ['1 day', /invalid duration/],
    [-5, /invalid duration -5/],
    [Number.NaN, /invalid duration/],
    [true, /expected a duration.*got true/],
    [null, /got nothing/],
    [['1s'], /got a list/],
    ['99999999999999999h', /too large/],
  ] as const)('%j is refused with a clear message', (value, message) => {
    const r = parseDuration(value);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(message);
  });
});

describe('parseSize', () => {
  it.each([
    ['512kB', 512 * 1024],
    ['512KB', 512 * 1024],
    ['16MB', 16 * 1024 ** 2],
    ['1GB', 1024 ** 3],
    ['100B', 100],
    ['100', 100],
    ['0', 0],
    ['1.5kB', 1536],
    [4096, 4096],
  ] as const)('%j is %d bytes', (text, bytes) => expect(parseSize(text)).toEqual({ ok: true, bytes }));

  it.each([
    ['16XB', /invalid size "16XB".*512kB, 16MB/],
    ['MB', /invalid size/],
    ['-1MB', /invalid size/],
    ['lots', /invalid size/],
    ['16mb', /invalid size/],
    [1.5, /whole number of bytes/],
    [-1, /invalid size -1/],
    [{}, /got a map/],
    ['9999999999999GB', /too large/],
  ] as const)('%j is refused with a clear message', (value, message) => {
    const r = parseSize(value);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(message);
  });
});

describe('formatting', () => {
  it.each([
    [0, '0ms'],
    [250, '250ms'],
    [1000, '1s'],
    [1500, '1500ms'],
    [60_000, '1m'],
    [90_000, '90s'],
    [7_200_000, '2h'],
  ])('duration %d ms is %s', (ms, text) => expect(formatDuration(ms)).toBe(text));

  it.each([
    [0, '0B'],
    [100, '100B'],
    [1024, '1kB'],
    [16 * 1024 ** 2, '16MB'],
    [3 * 1024 ** 3, '3GB'],
    [1536, '1536B'],
  ])('size %d is %s', (bytes, text) => expect(formatSize(bytes)).toBe(text));
});

describe('round trips (property)', () => {
  it('parseDuration(formatDuration(ms)) === ms', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 45 }), (ms) => {
      expect(parseDuration(formatDuration(ms))).toEqual({ ok: true, ms });
    }));
  });
  it('parseSize(formatSize(bytes)) === bytes', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 50 }), (bytes) => {
      expect(parseSize(formatSize(bytes))).toEqual({ ok: true, bytes });
    }));
  });
  it('a number with any unit parses to number x unit', () => {
    const units = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
    fc.assert(fc.property(fc.nat(100_000), fc.constantFrom(...(Object.keys(units) as (keyof typeof units)[])), (n, unit) => {
      expect(parseDuration(`${n}${unit}`)).toEqual({ ok: true, ms: n * units[unit] });
    }));
  });
});
