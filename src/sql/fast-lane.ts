import { KW, keywordOf } from './keywords.js';
import type { Reader } from './reader.js';
import { charClass, Tok, type TokKind } from './tokenizer.js';

/**
 * The fast lane of Reader.finish(): lexes and scans, in one loop and without a call
 * per token, the tokens whose whole effect on the scan is to move the token
 * history: spaces, words that are no keyword of KW, quoted names, PostgreSQL
 * '..' strings, commas, dots, `=` `<` `>` `+` (and `*` in PostgreSQL), plain
 * numbers, `$1`, `(` not after a name, `)`. It stops
 * before any other character (comments, strings, `;`, operators, non-ASCII,
 * string prefixes such as E'..'), leaving it to Lexer.next() and scanToken().
 * Only entered with nothing pending, and none of these tokens leaves anything
 * pending. Returns true when it stopped on a keyword that it has already made
 * the lexer's current token.
 *
 * Same result as the general path (test/unit/sql/fast-lane.test.ts compares
 * them). -19% instructions on the bench's short statements, -38% on its ORM
 * statements (valgrind/cachegrind, docs/classifier.md).
 */
export function fastLane(r: Reader): boolean {
  const lx = r.lx;
  const b = lx.b;
  const n = lx.limit;
  const src = lx.src;
  const table = charClass;
  const qident = lx.mysql ? 96 : 34; // `name` or "name": no escapes but the doubled quote
  let p = lx.pos;
  let kind = r.prevKind;
  let start = r.prevStart;
  let end = r.prevEnd;
  let hash = r.prevHash;
  let p1 = r.prev1;
  let p2 = r.prev2;
  let p3 = r.prev3;
  let depth = r.depth;
  let lexed = false;
  while (p < n) {
    const c = b[p]!;
    if (c === 32 || (c <= 13 && c >= 9)) {
      p++;
      continue;
    }
    let q = p + 1;
    let k: TokKind;
    if (c < 128 && table[c] === 2 /* C_IDSTART */) {
      // A word, read as Lexer.word() reads it (same hash).
      let h = Math.imul(0x811c9dc5 ^ (c >= 65 && c <= 90 ? c | 0x20 : c), 0x01000193);
      while (q < n) {
        const d = b[q]!;
        if (d < 128 ? table[d]! < 2 : d === 0xa0) break;
        h = Math.imul(h ^ (d >= 65 && d <= 90 ? d | 0x20 : d), 0x01000193);
        q++;
      }
      // E'..', B'..', X'..', N'..', U&'..' are strings: the lexer decides.
      if (q === p + 1 && q < n && (b[q] === 39 || b[q] === 38)) break;
      if (keywordOf(h, src, p, q) !== KW.NONE) {
        // Leave it lexed, for scanToken() to react to.
        lx.kind = Tok.WORD;
        lx.start = p;
        lx.end = q;
        lx.pos = q;
        lx.hash = h;
        lexed = true;
        break;
      }
      hash = h;
      k = Tok.WORD;
    } else if (c === qident) {
      const at = src.indexOf(lx.mysql ? '`' : '"', q);
      if (at < 0 || at >= n || (at + 1 < n && b[at + 1] === qident)) break; // unterminated or `""`: the lexer decides
      q = at + 1;
      k = Tok.QIDENT;
    } else if (c === 39 && !lx.mysql) {
      // A PostgreSQL string: no escapes but the doubled quote (E'..' never gets here).
      const at = src.indexOf("'", q);
      if (at < 0 || at >= n || (at + 1 < n && b[at + 1] === 39)) break;
      q = at + 1;
      k = Tok.STRING;
    } else if (c === 44) k = Tok.COMMA;
    else if (c === 61 || c === 60 || c === 62 || c === 43 || (c === 42 && !lx.mysql)) k = Tok.OP; // MySQL: `*` may close `/*!`
    else if (c === 46) {
      if (q < n && b[q]! >= 48 && b[q]! <= 57) break; // .5 is a number
      k = Tok.DOT;
    } else if (c >= 48 && c <= 57) {
      while (q < n && b[q]! >= 48 && b[q]! <= 57) q++;
      // 1.5, 1e5, 0x1F, 1_000: the lexer decides.
      if (q < n && (b[q] === 46 || (b[q]! < 128 ? table[b[q]!]! >= 2 : b[q] !== 0xa0))) break;
      k = Tok.NUMBER;
    } else if (c === 36 && !lx.mysql && q < n && b[q]! >= 48 && b[q]! <= 57) {
      while (q < n && b[q]! >= 48 && b[q]! <= 57) q++;
      k = Tok.PARAM;
    } else if (c === 40) {
      if (kind === Tok.WORD || kind === Tok.QIDENT) break; // maybe a function call: call() decides
      depth++;
      k = Tok.LPAREN;
    } else if (c === 41) {
      if (depth > 0) depth--;
      k = Tok.RPAREN;
    } else break;
    p3 = p2;
    p2 = p1;
    p1 = KW.NONE;
    kind = k;
    start = p;
    end = q;
    p = q;
  }
  if (!lexed) lx.pos = p;
  r.prevKind = kind;
  r.prevStart = start;
  r.prevEnd = end;
  r.prevHash = hash;
  r.prev1 = p1;
  r.prev2 = p2;
  r.prev3 = p3;
  r.depth = depth;
  return lexed;
}
