import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classify, Lexer, Tok, type Dialect } from '../../../src/sql/index.js';
import { keywordId, KW } from '../../../src/sql/keywords.js';
import { foldHash } from '../../../src/sql/tokenizer.js';

/**
 * Keywords, statement handlers and write functions are looked up by the hash the
 * lexer folds into each WORD while reading it (Lexer.hash). These tests pin that
 * the hash is exactly foldHash() of the word's text, and that a lookup by hash
 * never confuses words that merely share a length or first letter.
 */
describe('word hashes', () => {
  const dialects: Dialect[] = ['postgres', 'mysql'];
  const identifier = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_$]{0,24}$/);

  it('Lexer.hash of a WORD is foldHash() of its text, in both dialects', () => {
    fc.assert(
      fc.property(identifier, fc.constantFrom(...dialects), (w, d) => {
        const lx = new Lexer(`${w} `, d);
        expect(lx.next()).toBe(Tok.WORD);
        expect(lx.text()).toBe(w);
        expect(lx.hash).toBe(foldHash(w, 0, w.length));
        expect(lx.hash).toBe(foldHash(w.toLowerCase(), 0, w.length));
      }),
      { numRuns: 500 },
    );
  });

  it('hashes Unicode identifiers like foldHash() does (only ASCII letters fold)', () => {
    for (const w of ['été', 'ÉTÉ', 'naïve_Col', 'Ω', 'straße']) {
      const lx = new Lexer(w, 'postgres');
      expect(lx.next()).toBe(Tok.WORD);
      expect(lx.hash).toBe(foldHash(w, 0, w.length));
    }
  });

  it('recognises keywords in any case, and nothing that only looks like one', () => {
    const cases: [string, number][] = [
      ['insert', KW.INSERT], ['INSERT', KW.INSERT], ['Update', KW.UPDATE], ['tEmPoRaRy', KW.TEMP], ['SQL_CALC_FOUND_ROWS', KW.SQL_CALC_FOUND_ROWS],
      ['inserts', KW.NONE], ['insert_', KW.NONE], ['inser', KW.NONE], ['updatf', KW.NONE], ['fro', KW.NONE], ['form', KW.NONE],
      ['into1', KW.NONE], ['tempo', KW.NONE], ['ïnto', KW.NONE], ['', KW.NONE],
    ];
    for (const [w, id] of cases) expect(keywordId(w, 0, w.length), w).toBe(id);
  });

  it('leading keywords and write functions are matched by their whole word', () => {
    expect(classify('SELECTX 1', { dialect: 'postgres' })).toMatchObject({ class: 'write', reason: 'unknown' });
    expect(classify('SELEC 1', { dialect: 'postgres' })).toMatchObject({ class: 'write', reason: 'unknown' });
    expect(classify('sElEcT nextval2(1)', { dialect: 'postgres' })).toMatchObject({ class: 'read', reason: 'read' });
    expect(classify('sElEcT NEXTVAL(1)', { dialect: 'postgres' })).toMatchObject({ class: 'write', reason: 'write_function' });
    expect(classify('select get_lock2(1)', { dialect: 'mysql' })).toMatchObject({ class: 'read', reason: 'read' });
    expect(classify('select GET_LOCK("a", 1)', { dialect: 'mysql' })).toMatchObject({ class: 'write', reason: 'write_function' });
  });
});
