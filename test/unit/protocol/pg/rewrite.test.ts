import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { msg, parseParse, rewriteBindStatement, rewriteDescribeOrCloseName, rewriteParseName } from '../../../../src/protocol/pg/index.js';
import { ErrorCodes } from '../../../../src/errors.js';
import { only } from './helpers.js';

const violation = expect.objectContaining({ code: ErrorCodes.PROTOCOL_VIOLATION });
const name = fc.string({ unit: 'grapheme', maxLength: 30 }).filter((s) => !s.includes('\0'));
const param = fc.option(fc.uint8Array({ maxLength: 20 }).map((b) => Buffer.from(b)));

describe('statement name rewriting', () => {
  it('rewrites Parse, Bind, Describe and Close names and fixes the length field', () => {
    const p = rewriteParseName(msg.parse('client_s', 'SELECT $1', [23]), 'sy_1');
    expect(parseParse(only(p).payload)).toEqual({ name: 'sy_1', query: 'SELECT $1', paramTypes: [23] });
    expect(rewriteBindStatement(msg.bind('', 'client_s', [Buffer.from('42')]), 'sy_1').equals(msg.bind('', 'sy_1', [Buffer.from('42')]))).toBe(true);
    expect(rewriteDescribeOrCloseName(msg.describe('S', 'client_s'), 'sy_22').equals(msg.describe('S', 'sy_22'))).toBe(true);
    expect(rewriteDescribeOrCloseName(msg.close('S', 'a'), '').equals(msg.close('S', ''))).toBe(true);
  });

  it('equals building the frame with the new name, for arbitrary names and parameters (property)', () => {
    fc.assert(
      fc.property(name, name, name, name, fc.array(param, { maxLength: 4 }), fc.constantFrom<'S' | 'P'>('S', 'P'), (oldName, newName, portal, query, params, kind) => {
        expect(rewriteParseName(msg.parse(oldName, query, [25]), newName).equals(msg.parse(newName, query, [25]))).toBe(true);
        expect(rewriteBindStatement(msg.bind(portal, oldName, params), newName).equals(msg.bind(portal, newName, params))).toBe(true);
        expect(rewriteDescribeOrCloseName(msg.describe(kind, oldName), newName).equals(msg.describe(kind, newName))).toBe(true);
        expect(rewriteDescribeOrCloseName(msg.close(kind, oldName), newName).equals(msg.close(kind, newName))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('leaves its input untouched', () => {
    const original = msg.parse('a', 'SELECT 1');
    const copy = Buffer.from(original);
    rewriteParseName(original, 'longer_name');
    expect(original.equals(copy)).toBe(true);
  });

  it('refuses frames of the wrong type, with a wrong length or without the name terminator', () => {
    expect(() => rewriteParseName(msg.query('x'), 'n')).toThrow(violation);
    expect(() => rewriteBindStatement(msg.parse('a', 'b'), 'n')).toThrow(violation);
    expect(() => rewriteDescribeOrCloseName(msg.execute(''), 'n')).toThrow(violation);
    expect(() => rewriteParseName(msg.parse('a', 'b').subarray(0, 8), 'n')).toThrow(violation);
    const unterminated = Buffer.from([0x42, 0, 0, 0, 6, 0x61, 0x62]); // Bind "ab" with no NUL
    expect(() => rewriteBindStatement(unterminated, 'n')).toThrow(violation);
    const badKind = msg.describe('S', 'a');
    badKind[5] = 0x58; // 'X'
    expect(() => rewriteDescribeOrCloseName(badKind, 'n')).toThrow(violation);
  });

  it('refuses a new name containing NUL', () => {
    expect(() => rewriteParseName(msg.parse('a', 'b'), 'x\0y')).toThrow(expect.objectContaining({ code: ErrorCodes.INTERNAL }));
  });
});
