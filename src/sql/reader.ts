import { KW, keywordOf, type KeywordId } from './keywords.js';
import { codesOf, releaseCodes } from './codes.js';
import { fastLane } from './fast-lane.js';
import { identifierName, Lexer, Tok, wordEquals, type TokKind } from './tokenizer.js';
import { isSessionLockFunction, type WriteFunctionSet } from './write-functions.js';
import { dispatchStatement } from './statement.js';
import type { Dialect, Reason, SessionEffect, StatementClass, TransactionInfo } from './types.js';

export interface StatementResult {
  class: StatementClass;
  reason: Reason;
  transaction?: TransactionInfo;
  session?: SessionEffect[];
}

export interface ClassifyContext {
  dialect: Dialect;
  functions: WriteFunctionSet;
}

/** Off only in tests, which compare the fast lane of Reader.finish() with the general path. */
export const readerSettings = { fastLane: true };

// Bits of Reader.pending: what a token leaves for the next one to decide.
const P_DML_TOP = 1; // INSERT/UPDATE/DELETE/MERGE at depth 0, unless `(` follows
const P_DML_NESTED = 2; // the same inside parentheses
const P_LAST_INSERT_ID = 4; // MySQL LAST_INSERT_ID( : `)` or an argument?
const P_INTO = 8; // INTO @var / INTO TEMP
const P_COPY_TO = 16; // COPY ... TO STDOUT?
const P_END = 32; // END of a block, or END IF / END LOOP / ...

/** What the scanner saw in one statement (nested statements get their own). */
export class ScanState {
  dmlTop = false; // INSERT/UPDATE/DELETE/MERGE at paren depth 0
  dmlNested = false; // ... inside parentheses (writable CTE, subquery)
  locking = false; // FOR UPDATE / SHARE / LOCK IN SHARE MODE
  selectInto = false;
  writeFunction = false;
  assign = false; // MySQL :=
  effects: SessionEffect[] | undefined = undefined;
  /** COPY: the first FROM / TO at depth 0, and whether TO goes to STDOUT. */
  copyDirection: KeywordId = KW.NONE;
  copyToStdout = false;

  effect(e: SessionEffect): void {
    (this.effects ??= []).push(e);
  }
}

/**
 * Reads statements token by token. step() feeds the current token to the
 * scanner (which watches for writes hidden anywhere: writable CTEs, locking
 * clauses, SELECT INTO, write functions, `:=`) and advances; the statement
 * dispatcher looks at the leading keywords and calls step()/finish().
 */
export class Reader {
  readonly lx: Lexer;
  st = new ScanState();
  /** An unbalanced quote or comment was met: the whole text is unknown. */
  broken = false;
  /** Treat BEGIN ... END as a block whose `;` do not end the statement (routine bodies). */
  blocky = false;
  /** @internal */ depth = 0;
  private block = 0;
  /** @internal */ prevKind: TokKind = Tok.EOF;
  /** @internal */ prevStart = 0;
  /** @internal */ prevEnd = 0;
  /** @internal */ prevHash = 0; // Lexer.hash of the previous token when it is a WORD
  /** @internal */ prev1: KeywordId = KW.NONE;
  /** @internal */ prev2: KeywordId = KW.NONE;
  /** @internal */ prev3: KeywordId = KW.NONE;
  /** What the previous token left for this one to resolve: P_* bits (one test per token when 0). */
  /** @internal */ pending = 0;

  constructor(
    src: string,
    readonly ctx: ClassifyContext,
    codes?: Uint8Array,
  ) {
    this.lx = new Lexer(src, ctx.dialect, 0, src.length, codes);
  }

  get src(): string {
    return this.lx.src;
  }

  /** End of the last token scanned. */
  get lastEnd(): number {
    return this.prevEnd;
  }

  /** Parenthesis depth inside the current statement. */
  get parenDepth(): number {
    return this.depth;
  }

  /** Classifies a statement text found inside this one (MySQL `PREPARE s FROM '...'`). */
  nested(text: string): StatementResult {
    const { results, broken } = readAll(text, this.ctx);
    if (broken || results.length !== 1) return { class: 'write', reason: 'unknown' };
    return results[0]!;
  }

  /** True at the end of the current statement (`;` at depth 0 outside a block, or EOF). */
  atEnd(): boolean {
    const k = this.lx.kind;
    if (k === Tok.EOF || k === Tok.ERROR) {
      if (k === Tok.ERROR) this.broken = true;
      return true;
    }
    if ((this.pending & P_END) !== 0 && k === Tok.SEMI) this.resolveEnd(false);
    return k === Tok.SEMI && this.depth === 0 && this.block === 0;
  }

  /** Reads one statement starting at the current token; stops at its end. */
  readStatement(): StatementResult {
    this.depth = 0;
    this.block = 0;
    this.blocky = false;
    this.resetPrev();
    return dispatchStatement(this);
  }

  /** A statement nested in the current one (EXPLAIN x, DECLARE .. FOR x, PREPARE .. AS x). */
  readInner(): StatementResult {
    const outer = this.st;
    this.st = new ScanState();
    this.resetPrev();
    const r = dispatchStatement(this);
    this.st = outer;
    return r;
  }

  /** Scans the current token and moves to the next one. */
  step(): void {
    if (!this.atEnd()) {
      this.scan();
      this.lx.next();
    }
  }

  /** Scans the rest of the statement. */
  finish(): void {
    const lx = this.lx;
    const fast = readerSettings.fastLane;
    while (!this.atEnd()) {
      this.scan();
      // The fast lane reads the tokens that only move the token history; it stops
      // before anything else, or at a keyword that it leaves lexed.
      if (!fast || this.pending !== 0 || !fastLane(this)) lx.next();
    }
  }

  /** Kind of the current token (a call, so TypeScript does not narrow it across step()). */
  kind(): TokKind {
    return this.lx.kind;
  }

  /** Current token is the WORD `lower`. */
  is(lower: string): boolean {
    return this.lx.is(lower);
  }

  /** Current token is the WORD `lower`: step over it and return true. */
  accept(lower: string): boolean {
    if (!this.lx.is(lower)) return false;
    this.step();
    return true;
  }

  /** Lower-cased current WORD ('' for anything else). */
  word(): string {
    return this.lx.kind === Tok.WORD ? this.lx.text().toLowerCase() : '';
  }

  /** The identifier at the current token (unquoted, lower case), or '' for non-identifiers. */
  name(): string {
    const lx = this.lx;
    if (lx.kind === Tok.WORD || lx.kind === Tok.QIDENT) return identifierName(lx.src, lx.kind, lx.start, lx.end);
    if (lx.kind === Tok.STRING) return unquoteString(lx.text());
    return '';
  }

  private resetPrev(): void {
    this.prevKind = Tok.EOF;
    this.prev1 = this.prev2 = this.prev3 = KW.NONE;
    this.pending = 0;
  }

  private resolveEnd(closesIfEtc: boolean): void {
    this.pending &= ~P_END;
    if (!closesIfEtc && this.block > 0) this.block--;
  }

  /**
   * The scanner: one token's effect on the statement's flags. Most tokens
   * (quoted names, numbers, parameters, commas, dots) only move the token
   * history: that path is small enough for V8 to inline into finish(), which
   * saves a call per token (~80% of the tokens of the bench's ORM statements;
   * -11% instructions on them).
   */
  private scan(): void {
    const lx = this.lx;
    const kind = lx.kind;
    if (this.pending === 0 && kind !== Tok.WORD && kind !== Tok.LPAREN && kind !== Tok.RPAREN && kind !== Tok.ASSIGN) {
      this.prev3 = this.prev2;
      this.prev2 = this.prev1;
      this.prev1 = KW.NONE;
      this.prevKind = kind;
      this.prevStart = lx.start;
      this.prevEnd = lx.end;
      return;
    }
    this.scanToken(kind);
  }

  private scanToken(kind: TokKind): void {
    const lx = this.lx;
    const st = this.st;
    const s = lx.src;
    let id: KeywordId = KW.NONE;
    // 1. Resolve what the previous token left pending.
    const pending = this.pending;
    if (pending !== 0) {
      this.pending = pending & P_END;
      if ((pending & (P_DML_TOP | P_DML_NESTED)) !== 0) {
        // `INSERT(` is MySQL's string function, not a statement.
        if (kind !== Tok.LPAREN) {
          if ((pending & P_DML_TOP) !== 0) st.dmlTop = true;
          else st.dmlNested = true;
        }
      }
      if ((pending & P_LAST_INSERT_ID) !== 0) {
        if (kind === Tok.RPAREN) st.effect({ kind: 'last_insert_id' });
        else st.writeFunction = true; // LAST_INSERT_ID(expr) sets the value
      }
      if ((pending & P_INTO) !== 0) {
        if (kind === Tok.VAR) st.effect({ kind: 'user_variable' });
        else if (kind === Tok.WORD && keywordOf(lx.hash, s, lx.start, lx.end) === KW.TEMP) st.effect({ kind: 'temp_table' });
      }
      if ((pending & P_COPY_TO) !== 0) {
        st.copyToStdout = kind === Tok.WORD && keywordOf(lx.hash, s, lx.start, lx.end) === KW.STDOUT;
      }
      if ((pending & P_END) !== 0) {
        const k = kind === Tok.WORD ? keywordOf(lx.hash, s, lx.start, lx.end) : KW.NONE;
        this.resolveEnd(k === KW.IF || k === KW.LOOP || k === KW.WHILE || k === KW.REPEAT);
      }
    }
    // 2. This token.
    switch (kind) {
      case Tok.LPAREN:
        this.call();
        this.depth++;
        break;
      case Tok.RPAREN:
        if (this.depth > 0) this.depth--;
        break;
      case Tok.ASSIGN:
        st.assign = true;
        break;
      case Tok.WORD:
        id = keywordOf(lx.hash, s, lx.start, lx.end);
        this.prevHash = lx.hash;
        if (id !== KW.NONE) this.keyword(id);
        break;
    }
    this.prev3 = this.prev2;
    this.prev2 = this.prev1;
    this.prev1 = id;
    this.prevKind = kind;
    this.prevStart = lx.start;
    this.prevEnd = lx.end;
  }

  private keyword(id: KeywordId): void {
    const st = this.st;
    const qualified = this.prevKind === Tok.DOT; // t.update is a column, not a statement
    switch (id) {
      case KW.INSERT:
      case KW.DELETE:
      case KW.MERGE:
        if (!qualified) this.pending |= this.depth === 0 ? P_DML_TOP : P_DML_NESTED;
        break;
      case KW.UPDATE:
        if (this.prev1 === KW.FOR || (this.prev1 === KW.KEY && this.prev2 === KW.NO && this.prev3 === KW.FOR)) st.locking = true;
        else if (!qualified) this.pending |= this.depth === 0 ? P_DML_TOP : P_DML_NESTED;
        break;
      case KW.SHARE:
        if (this.prev1 === KW.FOR || (this.prev1 === KW.KEY && this.prev2 === KW.FOR) || (this.prev1 === KW.IN && this.prev2 === KW.LOCK)) {
          st.locking = true;
        }
        break;
      case KW.INTO:
        if (!qualified) {
          st.selectInto = true;
          this.pending |= P_INTO;
        }
        break;
      case KW.FOR:
        // MariaDB sequences: NEXT VALUE FOR s consumes; PREVIOUS VALUE FOR s is session state.
        if (this.prev1 === KW.VALUE && (this.prev2 === KW.NEXT || this.prev2 === KW.PREVIOUS)) st.writeFunction = true;
        break;
      case KW.SQL_CALC_FOUND_ROWS:
        st.effect({ kind: 'calc_found_rows' });
        break;
      case KW.FROM:
      case KW.TO:
        if (this.depth === 0 && st.copyDirection === KW.NONE) {
          st.copyDirection = id;
          if (id === KW.TO) this.pending |= P_COPY_TO;
        }
        break;
      case KW.BEGIN:
      case KW.CASE:
        if (this.blocky) this.block++;
        break;
      case KW.END:
        if (this.blocky && this.block > 0) this.pending |= P_END;
        break;
    }
  }

  /** `(` after a name: a function call (or a keyword followed by a parenthesis, which no list names). */
  private call(): void {
    const s = this.lx.src;
    const st = this.st;
    const fns = this.ctx.functions;
    if (this.prevKind === Tok.WORD) {
      const a = this.prevStart;
      const b = this.prevEnd;
      if (this.ctx.dialect === 'mysql') {
        if (wordEquals(s, a, b, 'last_insert_id')) {
          if (fns.hasHashedWord(this.prevHash, s, a, b)) this.pending |= P_LAST_INSERT_ID;
          return;
        }
        if (wordEquals(s, a, b, 'found_rows')) {
          st.effect({ kind: 'calc_found_rows' });
          return;
        }
      }
      if (fns.hasHashedWord(this.prevHash, s, a, b)) {
        st.writeFunction = true;
        if (isSessionLockFunction(this.ctx.dialect, s, a, b)) st.effect({ kind: 'advisory_lock' });
        else if (this.ctx.dialect === 'postgres' && wordEquals(s, a, b, 'set_config') && !isLocalSetConfig(s, this.lx.end)) st.effect({ kind: 'session_config' });
      }
    } else if (this.prevKind === Tok.QIDENT) {
      const name = identifierName(s, this.prevKind, this.prevStart, this.prevEnd);
      if (fns.hasName(name)) {
        st.writeFunction = true;
        if (isSessionLockFunction(this.ctx.dialect, name, 0, name.length)) st.effect({ kind: 'advisory_lock' });
      }
    }
  }
}

/**
 * Is the set_config( call whose `(` ends at `from` clearly transaction-local: a flat argument
 * list whose last argument is the literal `true`? Anything else (false, a parameter, an
 * expression, nested parentheses) counts as a session-level setting: the session layer
 * cannot replay it, so the session is pinned rather than the setting left on a pooled
 * connection for the next client.
 */
export function isLocalSetConfig(src: string, from: number): boolean {
  const close = src.indexOf(')', from);
  if (close < 0) return false;
  const args = src.slice(from, close);
  if (args.includes('(')) return false;
  const last = args.slice(args.lastIndexOf(',') + 1).trim().toLowerCase();
  return last === 'true';
}

/** The value of a simple quoted string token ('..', "..", E'..'), quotes removed, doubled quotes undone. */
export function unquoteString(tok: string): string {
  const open = tok.search(/['"`]/);
  if (open < 0) return tok;
  const q = tok[open]!;
  return tok.slice(open + 1, -1).split(q + q).join(q);
}

export interface TextReading {
  results: StatementResult[];
  /** [start, end) of each statement in the source (empty unless readAll() was asked for them). */
  spans: number[];
  /** An unbalanced quote or comment was met. */
  broken: boolean;
}

/**
 * Reads every statement of a text; empty statements (`;;`) are skipped.
 * `spans` is filled only when asked for (explain()).
 */
export function readAll(src: string, ctx: ClassifyContext, withSpans = false): TextReading {
  const codes = codesOf(src);
  try {
    return readCodes(src, codes, ctx, withSpans);
  } finally {
    releaseCodes(codes);
  }
}

function readCodes(src: string, codes: Uint8Array, ctx: ClassifyContext, withSpans: boolean): TextReading {
  const r = new Reader(src, ctx, codes);
  const results: StatementResult[] = [];
  const spans: number[] = [];
  const lx = r.lx;
  lx.next();
  for (;;) {
    while (lx.kind === Tok.SEMI) lx.next();
    if (lx.kind === Tok.EOF) break;
    if (lx.kind === Tok.ERROR) {
      r.broken = true;
      break;
    }
    const start = lx.start;
    if (results.length > 0) r.st = new ScanState(); // the Reader starts with a fresh one
    results.push(r.readStatement());
    r.finish(); // a branch that stopped early still ends at the statement's end
    if (withSpans) spans.push(start, r.lastEnd);
    if (r.broken) break;
  }
  return { results, spans, broken: r.broken };
}
