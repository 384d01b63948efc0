import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { classify, explain, type ClassifierOptions, type Dialect } from '../../../src/sql/index.js';
import { readerSettings } from '../../../src/sql/reader.js';
import { M, P, type CaseRow } from './cases/types.js';
import { allCases } from './cases.js';

/**
 * Reader.finish() reads most tokens in a fast lane (spaces, plain words, quoted
 * names, commas, numbers, ...) and the lexer reads a byte copy of the text.
 * These rows put every kind of token the fast lane must NOT swallow right after
 * tokens it does; each would be misclassified if the lane read one of them
 * itself or lost the token history. The properties compare the lane with the
 * general path on every table row and on random token soups.
 */
const rows: CaseRow[] = [
  // Keywords after easy tokens: the lane must stop and let the scanner see them.
  [P, 'SELECT a, b, c FROM t WHERE x = 1 FOR UPDATE', 'write', 'locking_read'],
  [P, 'SELECT "a"."b", "c" FROM "t" WHERE "d" IN ($1, $2) FOR SHARE', 'write', 'locking_read'],
  [P, 'SELECT a,b,c FROM t WHERE x=1 AND y<2 AND z>3 LIMIT 1 FOR NO KEY UPDATE', 'write', 'locking_read'],
  [P, 'SELECT *, a+b, 2 * c FROM t FOR KEY SHARE', 'write', 'locking_read'],
  [P, 'SELECT a, b FROM t WHERE x IN (SELECT y FROM u FOR UPDATE)', 'write', 'locking_read'],
  [P, 'SELECT a, b INTO c FROM t', 'write', 'select_into'],
  [P, 'SELECT a FROM t WHERE b IN (1, 2) AND c IN (WITH x AS (DELETE FROM u RETURNING 1) SELECT 1)', 'write', 'writable_cte'],
  [P, 'SELECT a, t.update, b."delete" FROM t', 'read', 'read'],
  // Function calls: `(` after a name goes to the scanner.
  [P, "SELECT a, nextval('s') FROM t", 'write', 'write_function'],
  [P, "SELECT \"a\", \"nextval\" ('s')", 'write', 'write_function'],
  [P, 'SELECT x.y, pg_catalog.pg_advisory_lock(1)', 'write', 'write_function'],
  [P, 'SELECT a, (b), ((c)) FROM t', 'read', 'read'],
  // Statement ends and what only looks like easy tokens.
  [P, 'SELECT a, (SELECT b FROM u), c FROM t; DELETE FROM t', 'write', 'multi_statement'],
  [P, "SELECT a, E'x\\'; DELETE FROM t' FROM t", 'read', 'read'],
  [P, "SELECT a, e'x\\'; DELETE FROM t' FROM t", 'read', 'read'],
  [P, "SELECT 1, U&'d\\0061t; DELETE FROM t' FROM t", 'read', 'read'],
  [P, "SELECT a, 'it''s; DELETE FROM t' FROM t", 'read', 'read'],
  [P, "SELECT a, ''';DELETE FROM t;' FROM t", 'read', 'read'],
  [P, 'SELECT "a""; DELETE FROM t" FROM t', 'read', 'read'],
  [P, 'SELECT a, .5, 1e+5, 0x1e+5, 1_000, 2.5e-3 FROM t FOR UPDATE', 'write', 'locking_read'],
  [P, "SELECT a, b FROM t WHERE c = 'x' -- ; DELETE FROM t\n", 'read', 'read'],
  [P, 'SELECT a, b /* ; DELETE FROM t */, c FROM t', 'read', 'read'],
  [P, 'SELECT a, $$ ; DELETE FROM t $$, $1 FROM t', 'read', 'read'],
  [P, 'SELECT a, b FROM t; UPDATE t SET a = 1', 'write', 'multi_statement'],
  [P, "SELECT a, 'unterminated FROM t", 'write', 'unknown'],
  [P, 'SELECT a, "unterminated FROM t', 'write', 'unknown'],
  // Non-ASCII: the lexer reads a byte copy; positions and words must stay right.
  [P, 'SELECT ünï, "é", a FROM t FOR UPDATE', 'write', 'locking_read'],
  [P, 'SELECT a\u00a0, b FROM t\u00a0FOR\ufeffUPDATE', 'write', 'locking_read'],
  [P, "SELECT '日本', a FROM t; DELETE FROM t", 'write', 'multi_statement'],
  [P, 'SELECT añextval(1), nextval日(2)', 'read', 'read'],
  // MySQL: backticks are names, "..." strings with backslash escapes, /*! */ is code.
  [M, 'SELECT a, `b`, c FROM t FOR UPDATE', 'write', 'locking_read'],
  [M, 'SELECT a, `x``y; DELETE FROM t` FROM t', 'read', 'read'],
  [M, 'SELECT a, "x\\" FOR UPDATE" FROM t', 'read', 'read'],
  [M, "SELECT a, 'x\\' FOR UPDATE' FROM t", 'read', 'read'],
  [M, 'SELECT a, b /*! FOR UPDATE */', 'write', 'locking_read'],
  [M, 'SELECT a, b /*!50100 , c */ FROM t LOCK IN SHARE MODE', 'write', 'locking_read'],
  [M, 'SELECT a, b /*!50100 * 2 */ FROM t', 'read', 'read'],
  [M, 'SELECT a, @v := 1', 'write', 'session'],
  [M, 'SELECT a, $b FROM t FOR UPDATE', 'write', 'locking_read'],
  [M, 'SELECT a, b FROM t WHERE c = ? FOR SHARE', 'write', 'locking_read'],
  [M, 'SELECT a, b INTO @x FROM t', 'write', 'select_into'],
  [M, 'SELECT a, last_insert_id(5)', 'write', 'write_function'],
  [M, 'SELECT a, b # ; DELETE FROM t\n FROM t', 'read', 'read'],
  [M, "PREPARE s FROM 'SELECT a, b FROM t'; SELECT a, b FROM t FOR UPDATE", 'write', 'multi_statement'],
];

describe('fast lane and byte lexer', () => {
  afterEach(() => {
    readerSettings.fastLane = true;
  });

  it.each(rows.map((r) => [r[0], r[1], r[2], r[3]] as const))('%s: %j -> %s %s', (dialect, sql, cls, reason) => {
    for (const fastLane of [true, false]) {
      readerSettings.fastLane = fastLane;
      expect(classify(sql, { dialect })).toMatchObject({ class: cls, reason });
    }
  });

  it('write functions whose names differ only in non-ASCII letters (same hash) are told apart', () => {
    const opts: ClassifierOptions = { dialect: 'postgres', writeFunctions: ['fñ', 'ünï_*'] };
    expect(classify('SELECT fñ(1)', opts)).toMatchObject({ class: 'write', reason: 'write_function' });
    expect(classify('SELECT fé(1)', opts)).toMatchObject({ class: 'read', reason: 'read' });
    expect(classify('SELECT "fñ"(1)', opts)).toMatchObject({ class: 'write', reason: 'write_function' });
    expect(classify('SELECT ünï_x(1)', opts)).toMatchObject({ class: 'write', reason: 'write_function' });
    expect(classify('SELECT ünö_x(1)', opts)).toMatchObject({ class: 'read', reason: 'read' });
  });

  it('classifies texts longer than the scratch buffer and non-ASCII ones like short ASCII ones', () => {
    const pad = ' '.repeat(20_000);
    expect(classify(`SELECT a${pad}, b FROM t FOR UPDATE`, { dialect: 'postgres' })).toMatchObject({ class: 'write', reason: 'locking_read' });
    expect(classify(`SELECT 'é'${pad}, b FROM t; DELETE FROM t`, { dialect: 'postgres' })).toMatchObject({ class: 'write', reason: 'multi_statement' });
    expect(classify(`SELECT a${pad}, "é" FROM t`, { dialect: 'postgres' })).toMatchObject({ class: 'read', reason: 'read' });
  });

  const both = (sql: string, dialect: Dialect) => {
    readerSettings.fastLane = true;
    const fast = explain(sql, { dialect });
    readerSettings.fastLane = false;
    const general = explain(sql, { dialect });
    readerSettings.fastLane = true;
    return { fast, general };
  };

  it('gives the same explain() as the general path on every table row', () => {
    for (const [dialect, sql] of [...allCases, ...rows]) {
      const { fast, general } = both(sql, dialect);
      expect(fast, sql).toEqual(general);
    }
  });

  it('gives the same explain() as the general path on random token soups', () => {
    const token = fc.constantFrom(
      'SELECT', 'select', 'FROM', 'INSERT', 'update', 'DELETE', 'FOR', 'SHARE', 'NO', 'KEY', 'INTO', 'TEMP', 'LOCK', 'IN', 'MODE',
      'NEXT', 'VALUE', 'COPY', 'TO', 'STDOUT', 'BEGIN', 'END', 'CASE', 'IF', 'CREATE', 'FUNCTION', 'WITH', 'AS',
      'nextval', 'NEXTVAL', 'pg_advisory_lock', 'get_lock', 'last_insert_id', 'found_rows', 'SQL_CALC_FOUND_ROWS',
      'a', 'b1', 't_x', 'e', 'E', 'u', 'U', 'x', 'B', 'N', 'é', 'añb', '\u00a0', '\ufeff',
      '(', ')', ',', '.', ';', '=', '<', '>', '+', '*', '-', ':=', '::', '?', '@v', '@@s', '$1', '$', '$$', '$t$',
      '"q"', '"a""b"', '"', '`b`', '`a``b`', '`', "'s'", "'it''s'", "'", "'a\\'b'", '\\',
      '1', '12', '1.5', '.5', '1e+5', '0x1e+5', '1_000', '3a',
      '/* c */', '/*', '*/', '/*! x', '/*!50100', '/*+ h */', '--', '-- c\n', '#', '# c\n', '&', "U&'x'", "E'\\''",
    );
    const sep = fc.constantFrom('', ' ', '  ', '\n', '\t');
    const soup = fc.array(fc.tuple(token, sep), { maxLength: 40 }).map((ts) => ts.map(([t, s]) => t + s).join(''));
    fc.assert(
      fc.property(soup, fc.constantFrom<Dialect>('postgres', 'mysql'), (sql, dialect) => {
        const { fast, general } = both(sql, dialect);
        expect(fast).toEqual(general);
      }),
      { numRuns: 3000 },
    );
  });
});
