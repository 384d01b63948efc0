import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classify, Lexer, Tok, type Dialect } from '../../../src/sql/index.js';
import { allCases } from './cases.js';

/** Tokens of a statement as source slices (comments and whitespace dropped). */
function tokens(sql: string, dialect: Dialect): string[] {
  const lx = new Lexer(sql, dialect);
  const out: string[] = [];
  for (let k = lx.next(), i = 0; k !== Tok.EOF && i < 10_000; k = lx.next(), i++) out.push(lx.text());
  return out;
}

// Statements whose meaning must survive re-spacing: the lexable rows of the table.
const rows = allCases.filter(([d, sql]) => {
  const lx = new Lexer(sql, d);
  for (let k = lx.next(), i = 0; k !== Tok.EOF && i < 10_000; k = lx.next(), i++) if (k === Tok.ERROR) return false;
  return sql.trim() !== '';
});

const separator = (dialect: Dialect) =>
  fc.oneof(
    fc.constantFrom(' ', '  ', '\n', '\t', ' \r\n '),
    fc.constantFrom(' /* DELETE FROM t */ ', ' /* x */', '/**/', ' -- UPDATE t\n', '\n-- c\n'),
    ...(dialect === 'mysql' ? [fc.constantFrom(' # INSERT\n', '/* ; */')] : [fc.constantFrom(' /* a /* b */ c */ ')]),
  );

function randomCase(word: string, flips: boolean[]): string {
  return [...word].map((ch, i) => (flips[i % flips.length] ? ch.toUpperCase() : ch.toLowerCase())).join('');
}

describe('properties', () => {
  it('whitespace and comments between tokens never change the class', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...rows).chain((row) => fc.tuple(fc.constant(row), fc.array(separator(row[0]), { minLength: 64, maxLength: 64 }))),
        ([[dialect, sql, cls], seps]) => {
          const toks = tokens(sql, dialect);
          // A MySQL `--` needs its following space and `/*!` code keeps its own spacing: rebuild only from tokens.
          const rebuilt = toks.map((t, i) => t + (seps[i % seps.length] ?? ' ')).join('');
          const original = classify(sql, { dialect });
          const respaced = classify(rebuilt, { dialect });
          expect(respaced.class).toBe(original.class);
          expect(original.class).toBe(cls);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('random keyword case never changes the class', () => {
    fc.assert(
      fc.property(fc.constantFrom(...rows), fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }), ([dialect, sql, cls], flips) => {
        const lx = new Lexer(sql, dialect);
        let out = '';
        let last = 0;
        for (let k = lx.next(), i = 0; k !== Tok.EOF && i < 10_000; k = lx.next(), i++) {
          out += sql.slice(last, lx.start) + (k === Tok.WORD && /^[a-z_]+$/i.test(lx.text()) ? randomCase(lx.text(), flips) : lx.text());
          last = lx.end;
        }
        out += sql.slice(last);
        expect(classify(out, { dialect }).class).toBe(cls);
      }),
      { numRuns: 400 },
    );
  });

  const ident = fc.stringMatching(/^[a-z_][a-z0-9_]{0,10}$/);
  const value = fc.oneof(fc.integer().map(String), fc.string().map((s) => `'${s.replace(/'/g, "''")}'`));
  const writeTemplate = fc.oneof(
    fc.tuple(ident, ident, value).map(([t, c, v]) => `INSERT INTO ${t} (${c}) VALUES (${v})`),
    fc.tuple(ident, ident, value, ident).map(([t, c, v, w]) => `UPDATE ${t} SET ${c} = ${v} WHERE ${w} = ${v}`),
    fc.tuple(ident, ident, value).map(([t, c, v]) => `DELETE FROM ${t} WHERE ${c} = ${v}`),
    fc.tuple(ident, ident).map(([t, c]) => `SELECT ${c} FROM ${t} FOR UPDATE`),
    fc.tuple(ident, ident).map(([t, c]) => `WITH x AS (DELETE FROM ${t} RETURNING ${c}) SELECT * FROM x`),
    fc.tuple(ident, ident).map(([t, c]) => `CREATE TABLE ${t} (${c} int)`),
    fc.tuple(ident, ident).map(([t, c]) => `SELECT ${c} FROM ${t}; DELETE FROM ${t}`),
    ident.map((t) => `TRUNCATE ${t}`),
  );

  it('a statement built from a write template is never a read', () => {
    fc.assert(
      fc.property(writeTemplate, fc.constantFrom<Dialect>('postgres', 'mysql'), (sql, dialect) => {
        expect(classify(sql, { dialect }).class).toBe('write');
      }),
      { numRuns: 1000 },
    );
  });

  it('the lexer and the classifier never throw on arbitrary strings', () => {
    const alphabet = fc.constantFrom(..."'\"`$;()/*-#\\ \n!M+:=?@.eEuU&xXbB0123456789abcdSELECTFROMWHERE日".split(''));
    const text = fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: alphabet, maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 100 }));
    fc.assert(
      fc.property(text, fc.constantFrom<Dialect>('postgres', 'mysql'), (sql, dialect) => {
        const c = classify(sql, { dialect });
        expect(['read', 'write']).toContain(c.class);
        const lx = new Lexer(sql, dialect);
        let steps = 0;
        while (lx.next() !== Tok.EOF && steps < 10_000) steps++;
        expect(steps).toBeLessThan(10_000); // always reaches EOF
      }),
      { numRuns: 3000 },
    );
  });

  it('an unbalanced quote or comment is an unknown write', () => {
    fc.assert(
      fc.property(fc.constantFrom("'", '"', '/*', '$$', '`'), fc.constantFrom<Dialect>('postgres', 'mysql'), fc.stringMatching(/^[a-z ]{0,20}$/), (open, dialect, tail) => {
        const sql = `SELECT 1 ${open}${tail}`;
        const c = classify(sql, { dialect });
        const lexable = !(dialect === 'mysql' && open === '$$') && !(dialect === 'postgres' && open === '`');
        if (lexable) expect(c).toMatchObject({ class: 'write', reason: 'unknown' });
      }),
      { numRuns: 200 },
    );
  });
});
