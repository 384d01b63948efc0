import { mapCodes } from './codes.js';
import type { Dialect } from './types.js';

/**
 * A lazy SQL lexer for PostgreSQL and MySQL/MariaDB. It never copies the
 * source: the current token is (kind, start, end) in fields of the lexer,
 * advanced by next(). Whitespace and comments are skipped; MySQL executable
 * comments (`/*! ... *\/`, `/*!50100 ... *\/`, `/*M! ... *\/`) are read as code
 * because the server may run what they hide. An unterminated string, quoted
 * identifier, dollar quote or comment yields one ERROR token, after which the
 * lexer is at EOF. The lexer never throws.
 */
export const Tok = {
  EOF: 0,
  WORD: 1, // identifier or keyword
  QIDENT: 2, // "quoted" (or `backtick`) identifier
  STRING: 3, // any string literal, incl. dollar-quoted
  NUMBER: 4,
  PARAM: 5, // $1 or ?
  VAR: 6, // MySQL @user_variable
  SYSVAR: 7, // MySQL @@system_variable
  LPAREN: 8,
  RPAREN: 9,
  SEMI: 10,
  COMMA: 11,
  DOT: 12,
  ASSIGN: 13, // MySQL :=
  OP: 14, // any other operator character (or ::)
  ERROR: 15, // unbalanced quote or comment
} as const;
export type TokKind = (typeof Tok)[keyof typeof Tok];

// Character classes for the ASCII range (charClass is also read by the reader's fast lane).
const C_OTHER = 0;
const C_SPACE = 1;
const C_IDSTART = 2; // letters and _
const C_DIGIT = 3;
const C_IDPART = 4; // $: inside identifiers only
export const charClass = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  if (c === 32 || (c >= 9 && c <= 13)) charClass[c] = C_SPACE;
  else if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95) charClass[c] = C_IDSTART;
  else if (c >= 48 && c <= 57) charClass[c] = C_DIGIT;
  else if (c === 36) charClass[c] = C_IDPART;
}

// On codesOf() bytes: 0x80 is any other non-ASCII character (a letter for SQL), 0xa0 a non-ASCII space.
function isIdentStart(c: number): boolean {
  return c >= 128 ? c !== 0xa0 : charClass[c] === C_IDSTART;
}
function isIdentPart(c: number): boolean {
  return c < 128 ? charClass[c]! >= C_IDSTART : c !== 0xa0;
}

export class Lexer {
  kind: TokKind = Tok.EOF;
  start = 0;
  end = 0;
  /** For a WORD: foldHash() of its text, computed while reading it (keyword and function lookups need no second pass). */
  hash = 0;
  pos: number;
  readonly mysql: boolean;
  /** Inside a MySQL executable comment: its closing `*\/` is skipped. */
  private inExecComment = false;
  /** The text's characters as bytes (see codesOf()): the lexer reads these, never the string. */
  readonly b: Uint8Array;

  /** `codes`: codesOf(src) when the caller has it (readAll() lends a scratch buffer); otherwise the lexer makes its own. */
  constructor(
    readonly src: string,
    readonly dialect: Dialect,
    from = 0,
    readonly limit = src.length,
    codes?: Uint8Array,
  ) {
    this.pos = from;
    this.mysql = dialect === 'mysql';
    this.b = codes ?? mapCodes(src, new Uint8Array(src.length));
  }

  /** Advances to the next token and returns its kind. */
  next(): TokKind {
    const b = this.b;
    const n = this.limit;
    let p = this.pos;
    for (;;) {
      if (p >= n) return this.set(Tok.EOF, n, n);
      const c = b[p]!;
      // 1. Whitespace (the common case first; 0xa0 stands for U+00A0 and U+FEFF, see codesOf()).
      if (c === 32 || (c <= 13 && c >= 9) || c === 0xa0) {
        p++;
        continue;
      }
      // The next character is read only by the cases that look at it (a
      // read less for quoted names, commas and parentheses; -0.4%
      // instructions on ORM statements).
      this.pos = p;
      switch (c) {
        // 2. Comments, and what only looks like one.
        case 45: // -
          // MySQL needs whitespace or a control character after `--`; `--x` is two minus signs.
          if (this.at(p + 1) === 45 && (!this.mysql || p + 2 >= n || b[p + 2]! <= 32)) {
            p = this.lineEnd(p + 2);
            continue;
          }
          return this.single(Tok.OP);
        case 35: // #
          if (!this.mysql) return this.single(Tok.OP);
          p = this.lineEnd(p + 1);
          continue;
        case 47: // /
          if (this.at(p + 1) !== 42) return this.single(Tok.OP);
          if (this.mysql && this.openExecComment(p)) {
            p = this.pos;
            continue;
          }
          if (!this.skipBlockComment(p)) return this.fail(p);
          p = this.pos;
          continue;
        case 42: // *
          if (this.inExecComment && this.at(p + 1) === 47) {
            this.inExecComment = false;
            p += 2;
            continue;
          }
          return this.single(Tok.OP);
        // 3. Tokens.
        case 40: return this.single(Tok.LPAREN);
        case 41: return this.single(Tok.RPAREN);
        case 59: return this.single(Tok.SEMI);
        case 44: return this.single(Tok.COMMA);
        case 39: return this.quoted(p, p + 1, 39, this.mysql, Tok.STRING);
        case 34: return this.quoted(p, p + 1, 34, this.mysql, this.mysql ? Tok.STRING : Tok.QIDENT);
        case 96: return this.mysql ? this.quoted(p, p + 1, 96, false, Tok.QIDENT) : this.single(Tok.OP);
        case 46: {
          const c1 = this.at(p + 1);
          return c1 >= 48 && c1 <= 57 ? this.number(p) : this.single(Tok.DOT);
        }
        case 58: {
          const c1 = this.at(p + 1);
          if (c1 === 58) return this.set(Tok.OP, p, p + 2);
          if (c1 === 61 && this.mysql) return this.set(Tok.ASSIGN, p, p + 2);
          return this.single(Tok.OP);
        }
        case 63: return this.single(this.mysql ? Tok.PARAM : Tok.OP);
        case 36: return this.mysql ? this.word(p, c, this.at(p + 1)) : this.dollar(p, this.at(p + 1));
        case 64: return this.mysql ? this.variable(p, this.at(p + 1)) : this.single(Tok.OP);
      }
      if (c >= 48 && c <= 57) return this.number(p);
      if (isIdentStart(c)) return this.word(p, c, this.at(p + 1));
      return this.single(Tok.OP);
    }
  }

  /** True when the current token is a WORD equal (ASCII case-insensitive) to `lower`. */
  is(lower: string): boolean {
    return this.kind === Tok.WORD && wordEquals(this.src, this.start, this.end, lower);
  }

  /** Source text of the current token. */
  text(): string {
    return this.src.slice(this.start, this.end);
  }

  /** The character at i, or 0 at the end. */
  private at(i: number): number {
    return i < this.limit ? this.b[i]! : 0;
  }

  private set(kind: TokKind, start: number, end: number): TokKind {
    this.kind = kind;
    this.start = start;
    this.end = end;
    this.pos = end;
    return kind;
  }

  private single(kind: TokKind): TokKind {
    return this.set(kind, this.pos, this.pos + 1);
  }

  private fail(at: number): TokKind {
    this.kind = Tok.ERROR;
    this.start = at;
    this.end = this.limit;
    this.pos = this.limit;
    return Tok.ERROR;
  }

  /** Index of the end of the line starting at or after p. */
  private lineEnd(p: number): number {
    const b = this.b;
    while (p < this.limit) {
      const c = b[p]!;
      if (c === 10 || c === 13) break;
      p++;
    }
    return p;
  }

  /** `/*` at p: skip to the matching `*\/` (nested in PostgreSQL). False when unterminated. */
  private skipBlockComment(p: number): boolean {
    const b = this.b;
    const n = this.limit;
    let depth = 1;
    p += 2;
    while (p < n) {
      const c = b[p]!;
      if (c === 42 && p + 1 < n && b[p + 1] === 47) {
        p += 2;
        if (--depth === 0) {
          this.pos = p;
          return true;
        }
      } else if (c === 47 && !this.mysql && p + 1 < n && b[p + 1] === 42) {
        depth++;
        p += 2;
      } else p++;
    }
    return false;
  }

  /** `/*!` [version] or `/*M!` [version] at p: enter code mode. */
  private openExecComment(p: number): boolean {
    const b = this.b;
    let q = p + 2;
    if (this.at(q) === 77 /* M */ && this.at(q + 1) === 33) q += 2;
    else if (this.at(q) === 33 /* ! */) q += 1;
    else return false;
    while (q < this.limit && b[q]! >= 48 && b[q]! <= 57) q++;
    this.inExecComment = true;
    this.pos = q;
    return true;
  }

  /**
   * A quoted string or identifier opened at `open` with body from `from`.
   * The quote character doubled stands for itself; with `backslash`, `\x` escapes.
   */
  private quoted(open: number, from: number, quote: number, backslash: boolean, kind: TokKind): TokKind {
    const s = this.src;
    const b = this.b;
    const n = this.limit;
    let p = from;
    if (!backslash) {
      // No escapes: jump from quote to quote (indexOf is much faster than a char loop).
      const q = quote === 39 ? "'" : quote === 34 ? '"' : '`';
      for (;;) {
        const at = s.indexOf(q, p);
        if (at < 0 || at >= n) return this.fail(open);
        if (at + 1 < n && b[at + 1] === quote) p = at + 2;
        else return this.set(kind, open, at + 1);
      }
    }
    while (p < n) {
      const c = b[p]!;
      if (c === quote) {
        if (p + 1 < n && b[p + 1] === quote) p += 2;
        else return this.set(kind, open, p + 1);
      } else if (c === 92) p += 2;
      else p++;
    }
    return this.fail(open);
  }

  /** `$` in PostgreSQL: a parameter `$1`, a dollar quote `$tag$...$tag$`, or an operator. */
  private dollar(p: number, c1: number): TokKind {
    const s = this.src;
    const b = this.b;
    const n = this.limit;
    if (c1 >= 48 && c1 <= 57) {
      let q = p + 1;
      while (q < n && b[q]! >= 48 && b[q]! <= 57) q++;
      return this.set(Tok.PARAM, p, q);
    }
    let q = p + 1;
    if (c1 !== 36) {
      if (!isIdentStart(c1)) return this.single(Tok.OP);
      while (q < n && isIdentPart(b[q]!) && b[q] !== 36) q++;
      if (q >= n || b[q] !== 36) return this.single(Tok.OP);
    }
    const tag = s.slice(p, q + 1); // `$tag$`: the only allocation, once per dollar quote
    const close = s.indexOf(tag, q + 1);
    if (close < 0 || close + tag.length > n) return this.fail(p);
    return this.set(Tok.STRING, p, close + tag.length);
  }

  /** `@name`, `@'name'`, `@@name` (MySQL variables). */
  private variable(p: number, c1: number): TokKind {
    const b = this.b;
    const n = this.limit;
    let kind: TokKind = Tok.VAR;
    let q = p + 1;
    if (c1 === 64) {
      kind = Tok.SYSVAR;
      q++;
    }
    const c = q < n ? b[q]! : 0;
    if (c === 39 || c === 34 || c === 96) {
      const k = this.quoted(p, q + 1, c, c !== 96, kind);
      return k === Tok.ERROR ? k : kind;
    }
    while (q < n && (isIdentPart(b[q]!) || b[q] === 46)) q++;
    return this.set(kind, p, q);
  }

  private number(p: number): TokKind {
    const b = this.b;
    const n = this.limit;
    let q = p;
    while (q < n) {
      const c = b[q]!;
      if ((c >= 48 && c <= 57) || c === 46 || c === 95 || (c < 128 && charClass[c] === C_IDSTART)) q++;
      else if ((c === 43 || c === 45) && (b[q - 1]! | 0x20) === 101 /* e */ && !(b[p] === 48 && (this.at(p + 1) | 0x20) === 120 /* 0x */)) q++;
      else break;
    }
    return this.set(Tok.NUMBER, p, q);
  }

  private word(p: number, c: number, c1: number): TokKind {
    const b = this.b;
    const n = this.limit;
    // 1. String prefixes: E'..' (PG, backslash escapes), B'..', X'..', N'..', U&'..' / U&"..".
    if (c1 === 39) {
      const lc = c | 0x20;
      if (lc === 101 && !this.mysql) return this.quoted(p, p + 2, 39, true, Tok.STRING);
      if (lc === 98 || lc === 120 || lc === 110) return this.quoted(p, p + 2, 39, this.mysql, Tok.STRING);
    }
    if ((c | 0x20) === 117 && c1 === 38 && !this.mysql) {
      const c2 = p + 2 < n ? b[p + 2]! : 0;
      if (c2 === 39) return this.quoted(p, p + 3, 39, false, Tok.STRING);
      if (c2 === 34) return this.quoted(p, p + 3, 34, false, Tok.QIDENT);
    }
    // 2. A plain identifier or keyword.
    // The hottest loop of the lexer: the class test is written out (one table
    // load per ASCII character), and the word's hash is folded in on the way, so
    // keyword and write-function lookups never read the characters again.
    // The FNV prime and C_IDSTART are written as literals: V8 (node 20) reloads and
    // re-checks a module constant from its context on every iteration (-6%
    // instructions per statement under 200 characters).
    const table = charClass;
    let h = Math.imul(FNV_OFFSET ^ (c >= 65 && c <= 90 ? c | 0x20 : c), 0x01000193);
    let q = p + 1;
    while (q < n) {
      const d = b[q]!;
      if (d < 128 ? table[d]! < 2 /* C_IDSTART */ : d === 0xa0) break;
      h = Math.imul(h ^ (d >= 65 && d <= 90 ? d | 0x20 : d), 0x01000193 /* FNV prime */);
      q++;
    }
    this.hash = h;
    return this.set(Tok.WORD, p, q);
  }
}

const FNV_OFFSET = 0x811c9dc5 | 0; // the FNV prime, 0x01000193, is written as a literal where used (see Lexer.word())

/**
 * FNV-1a over the characters of src[start, end) as codesOf() has them (ASCII
 * letters lower-cased, every other non-ASCII character 0x80), as a signed 32-bit
 * integer (a small integer for V8). Lexer.hash of a WORD is foldHash() of its
 * text. Equal hashes do not prove equal words (all non-ASCII characters hash
 * alike): callers confirm with wordEquals() on the text itself.
 */
export function foldHash(src: string, start: number, end: number): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) {
    const c = src.charCodeAt(i);
    h = Math.imul(h ^ (c >= 128 ? 0x80 : c >= 65 && c <= 90 ? c | 0x20 : c), 0x01000193 /* FNV prime */);
  }
  return h;
}

/** ASCII case-insensitive comparison of src[start, end) with a lower-case word, without allocating. */
export function wordEquals(src: string, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    let c = src.charCodeAt(start + i);
    if (c >= 65 && c <= 90) c |= 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** True when src[start, end) begins (case-insensitively) with the lower-case `prefix`. */
export function wordStartsWith(src: string, start: number, end: number, prefix: string): boolean {
  if (end - start < prefix.length) return false;
  return wordEquals(src, start, start + prefix.length, prefix);
}

/** The identifier a WORD or QIDENT token names, lower-cased (a QIDENT's case is kept with `fold` false; quotes removed, doubled quotes undone). */
export function identifierName(src: string, kind: TokKind, start: number, end: number, fold = true): string {
  if (kind === Tok.QIDENT) {
    const open = src.charCodeAt(start) === 85 || src.charCodeAt(start) === 117 ? start + 2 : start; // U&"..."
    const quote = src[open] ?? '"';
    const name = src.slice(open + 1, end - 1).split(quote + quote).join(quote);
    return fold ? name.toLowerCase() : name;
  }
  return src.slice(start, end).toLowerCase();
}
