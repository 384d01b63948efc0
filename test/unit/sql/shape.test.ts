import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Classifier, classify, type Dialect } from '../../../src/sql/index.js';
import { literalShape } from '../../../src/sql/shape.js';
import { allCases } from './cases.js';

const shape = (sql: string, dialect: Dialect = 'postgres') => literalShape(sql, dialect, 2048);

describe('literal shape', () => {
  const rows: [Dialect, string, string | null][] = [
    ['postgres', 'SELECT abalance FROM pgbench_accounts WHERE aid = 48213;', 'SELECT abalance FROM pgbench_accounts WHERE aid = ?;'],
    ['postgres', "select * from t where a = 'x''y' and b = 1.5", 'select * from t where a = ? and b = ?'],
    ['postgres', 'UPDATE t1 SET c2 = 3 WHERE id = 4', 'UPDATE t1 SET c2 = ? WHERE id = ?'],
    ['postgres', 'INSERT INTO "t 1" ("c3") VALUES (7)', 'INSERT INTO "t 1" ("c3") VALUES (?)'],
    ['postgres', "  delete from t where x in (1,2,'3')", '  delete from t where x in (?,?,?)'],
    ['mysql', 'SELECT `c1` FROM `t2` WHERE id = 10', 'SELECT `c1` FROM `t2` WHERE id = ?'],
    ['mysql', 'SELECT "a1" FROM t WHERE id = 10', 'SELECT "a1" FROM t WHERE id = ?'],
    // No literal: the exact-text cache serves it.
    ['postgres', 'SELECT a FROM t', null],
    ['postgres', 'SELECT t1.c2 FROM t1', null],
    // Not a plain SELECT/INSERT/UPDATE/DELETE.
    ['postgres', "SET search_path = 'a'", null],
    ['postgres', 'EXPLAIN (ANALYZE 0) DELETE FROM t WHERE id = 1', null],
    ['postgres', 'WITH x AS (SELECT 1) SELECT * FROM x', null],
    ['postgres', 'SELECTED 1', null],
    ['mysql', 'SHOW TABLES LIKE 1', null],
    // Comments (hints, executable comments), dollar quotes, parameters, escapes, prefixed strings.
    ['postgres', '/* route=replica */ SELECT 1', null],
    ['postgres', 'SELECT 1 -- x', null],
    ['mysql', 'SELECT 1 # x', null],
    ['mysql', 'SELECT /*! 1 */ 2', null],
    ['postgres', 'SELECT $$a$$, 1', null],
    ['postgres', 'SELECT $1 + 1', null],
    ['mysql', "SELECT 'a\\'b', 1", null],
    ['postgres', "SELECT E'a', 1", null],
    ['postgres', "SELECT U&'a', 1", null],
    ['mysql', "SELECT _utf8mb4'a', 1", null],
    ['mysql', "SELECT x'1F', 1", null],
    // Unterminated.
    ['postgres', "SELECT 'a", null],
    ['postgres', 'SELECT "a FROM t WHERE 1', null],
  ];
  it.each(rows)('%s %j -> %j', (dialect, sql, expected) => {
    expect(shape(sql, dialect)).toBe(expected);
  });

  it('texts longer than the limit have no shape', () => {
    expect(literalShape(`SELECT ${'1, '.repeat(100)}1`, 'postgres', 100)).toBeNull();
  });
});

describe('the classifier caches texts with values by shape', () => {
  it('10,000 pgbench -S texts: one entry, one shared frozen result, the same as classifying each', () => {
    const c = new Classifier({ dialect: 'postgres' });
    const first = c.classify('SELECT abalance FROM pgbench_accounts WHERE aid = 1;');
    for (let aid = 2; aid <= 10_000; aid++) expect(c.classify(`SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`)).toBe(first);
    expect(c.size).toBe(1);
    expect(Object.isFrozen(first)).toBe(true);
    expect(first).toEqual(classify('SELECT abalance FROM pgbench_accounts WHERE aid = 10000;', { dialect: 'postgres' }));
  });

  it('results that carry values are not shared by shape', () => {
    const c = new Classifier({ dialect: 'mysql' });
    // GET_LOCK pins (a session effect): each text is classified, none served by another's shape.
    const a = c.classify("SELECT GET_LOCK('a', 1)");
    expect(a.session?.length).toBeGreaterThan(0);
    expect(c.classify("SELECT GET_LOCK('b', 2)")).not.toBe(a);
    const w = new Classifier({ dialect: 'postgres' });
    expect(w.classify("SELECT nextval('s1')").class).toBe('write');
    expect(w.classify("SELECT nextval('s2')")).not.toBe(w.classify("SELECT nextval('s1')"));
  });

  /**
   * The claim the shape cache rests on: two texts of one shape classify alike whenever the
   * result is admitted. For every row of the classification table, variants with other
   * values go through one caching classifier (variant first, so a wrong shared entry would
   * answer the row); every answer must equal classifying that text alone.
   */
  const variants = (sql: string, seed: number): string[] => {
    const digits = (s: string, k: number) => s.replace(/(?<![A-Za-z0-9_$])\d+/g, (m) => String((Number(m.slice(0, 6)) + k * 7919) % 1_000_003));
    const strings = (s: string, k: number) => s.replace(/'(?:[^'\\]|'')*'/g, (_m) => `'v${k}x'`);
    return [digits(sql, seed), strings(sql, seed), strings(digits(sql, seed + 1), seed + 2), sql];
  };

  it('every table row and its value variants classify as alone', () => {
    let shaped = 0;
    for (const dialect of ['postgres', 'mysql'] as const) {
      const c = new Classifier({ dialect });
      for (const row of allCases) {
        if (row[0] !== dialect) continue;
        for (const text of variants(row[1], 3)) {
          if (literalShape(text, dialect, 2048) !== null) shaped++;
          expect(c.classify(text), `${dialect} ${text}`).toEqual(classify(text, { dialect }));
        }
      }
    }
    // The table has plenty of rows with values: the property is not vacuous.
    expect(shaped).toBeGreaterThan(100);
  });

  it('property: random values in random table rows, in random order, classify as alone', () => {
    const rows = allCases.filter((r) => literalShape(r[1], r[0], 2048) !== null);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(rows.length - 1), fc.nat(1_000_000)), { minLength: 1, maxLength: 40 }), (picks) => {
        const cs = { postgres: new Classifier({ dialect: 'postgres' }), mysql: new Classifier({ dialect: 'mysql' }) };
        for (const [i, k] of picks) {
          const [dialect, sql] = rows[i]!;
          for (const text of variants(sql, k)) expect(cs[dialect].classify(text)).toEqual(classify(text, { dialect }));
        }
      }),
      { numRuns: 300 },
    );
  });
});
