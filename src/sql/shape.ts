import type { Classification, Dialect } from './types.js';

/**
 * The literal shape of a statement: its text with every number and every plain
 * '...' string replaced by `?`, or null when the text is not one whose class
 * can be told from its shape alone.
 *
 * Why: a client that inlines values (`pgbench -S -M simple`, PHP, hand-written
 * SQL) sends a new text for every execution — `... WHERE aid = 48213` — so a
 * cache keyed by the exact text never hits and every statement is lexed and
 * classified again. Statements of one shape classify alike as long as no value
 * decides anything; shapeCacheable() admits only such results.
 *
 * Conservative by construction — null (no shape, classify the text itself) for:
 * - a text that does not start with SELECT, INSERT, UPDATE or DELETE (so no
 *   SET, EXPLAIN options, SHOW, CALL, DO, WITH ...);
 * - comments of any kind (`--`, `/*`, MySQL `#`): they carry routing hints and
 *   MySQL executable comments;
 * - `$` (dollar quotes, parameters, names with `$`) and `\` anywhere (escapes);
 * - a string with a prefix (E'..', N'..', X'..', B'..', U&'..', _utf8'..');
 * - an unterminated quote or quoted name;
 * - no literal at all (the exact-text cache serves those), or a text longer
 *   than `maxLength`.
 * Quoted names ("..", `..`, and MySQL's ".." which may be a string) are kept
 * verbatim, as are digits inside names (t1, col_2).
 */
export function literalShape(sql: string, dialect: Dialect, maxLength: number): string | null {
  const n = sql.length;
  if (n > maxLength) return null;
  let p = 0;
  while (p < n && isSpace(sql.charCodeAt(p))) p++;
  if (!startsWithShapedVerb(sql, p)) return null;
  const mysql = dialect === 'mysql';
  let out = '';
  let copied = 0;
  let literals = 0;
  while (p < n) {
    const c = sql.charCodeAt(p);
    if (c === 39 /* ' */) {
      if (p > 0 && isNameChar(sql.charCodeAt(p - 1))) return null; // E'..', N'..', _utf8'..', U&'..' handled below
      let q = p + 1;
      for (;;) {
        if (q >= n) return null;
        const d = sql.charCodeAt(q);
        if (d === 92 /* \ */) return null;
        if (d === 39) {
          if (sql.charCodeAt(q + 1) === 39) { q += 2; continue; }
          break;
        }
        q++;
      }
      out += sql.slice(copied, p) + '?';
      copied = q + 1;
      p = q + 1;
      literals++;
      continue;
    }
    if (c === 34 /* " */ || (mysql && c === 96) /* ` */) {
      let q = p + 1;
      for (;;) {
        if (q >= n) return null;
        const d = sql.charCodeAt(q);
        if (d === 92) return null;
        if (d === c) {
          if (sql.charCodeAt(q + 1) === c) { q += 2; continue; }
          break;
        }
        q++;
      }
      p = q + 1;
      continue;
    }
    if (c >= 48 && c <= 57) {
      if (p > 0 && isNameChar(sql.charCodeAt(p - 1))) { p++; continue; } // a digit inside a name
      let q = p + 1;
      while (q < n) {
        const d = sql.charCodeAt(q);
        if ((d >= 48 && d <= 57) || d === 46 /* . */) q++;
        else break;
      }
      out += sql.slice(copied, p) + '?';
      copied = q;
      p = q;
      literals++;
      continue;
    }
    if (c === 36 /* $ */ || c === 92 /* \ */) return null;
    if (c === 45 /* - */ && sql.charCodeAt(p + 1) === 45) return null;
    if (c === 47 /* / */ && sql.charCodeAt(p + 1) === 42) return null;
    if (c === 35 /* # */ && mysql) return null;
    if (c === 38 /* & */ && sql.charCodeAt(p + 1) === 39 && p > 0 && isNameChar(sql.charCodeAt(p - 1))) return null; // U&'..'
    p++;
  }
  if (literals === 0) return null;
  return out + sql.slice(copied);
}

/**
 * Whether a classification may serve every statement of its shape: one
 * statement, a plain read or a plain DML write, no transaction control, no
 * session effect (those carry values: SET's, USE's database, lock ids...).
 */
export function shapeCacheable(c: Classification): boolean {
  return (
    c.statements === 1 &&
    c.transaction === undefined &&
    c.session === undefined &&
    ((c.class === 'read' && c.reason === 'read') || (c.class === 'write' && c.reason === 'dml'))
  );
}

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

/** Letters, digits, `_` and anything non-ASCII: what a name is made of, so a digit after it is part of it. */
function isNameChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c >= 128;
}

const VERBS = ['select', 'insert', 'update', 'delete'];

function startsWithShapedVerb(sql: string, p: number): boolean {
  for (const v of VERBS) {
    if (sql.length < p + v.length) continue;
    let ok = true;
    for (let i = 0; i < v.length; i++) {
      if ((sql.charCodeAt(p + i) | 0x20) !== v.charCodeAt(i)) { ok = false; break; }
    }
    // The verb must end there: SELECTED is a name, not SELECT.
    if (ok && !isNameChar(sql.charCodeAt(p + v.length) || 32)) return true;
  }
  return false;
}
