import { KW } from './keywords.js';
import type { Reader, ScanState, StatementResult } from './reader.js';
import { readSessionStatement, SESSION_KEYWORDS } from './session-statements.js';
import { readTransactionStatement, TRANSACTION_KEYWORDS } from './transaction-statements.js';
import { foldHash, Tok, wordEquals } from './tokenizer.js';
import type { Reason, SessionEffect } from './types.js';

/**
 * Classifies one statement from its leading keyword(s). The reader is at the
 * statement's first token; every branch scans to the statement's end, so the
 * scanner sees every token (and a write hidden anywhere is found).
 */
export function dispatchStatement(r: Reader): StatementResult {
  const lx = r.lx;
  if (lx.kind === Tok.LPAREN) return query(r); // (SELECT 1) UNION (SELECT 2)
  if (lx.kind !== Tok.WORD) return rest(r, 'write', 'unknown');
  const entry = HANDLERS.get(lx.hash);
  return entry && wordEquals(lx.src, lx.start, lx.end, entry.word) ? entry.handler(r) : rest(r, 'write', 'unknown');
}

type Handler = (r: Reader) => StatementResult;

const fixed = (cls: 'read' | 'write', reason: Reason): Handler => (r) => rest(r, cls, reason);

/**
 * Leading keyword -> handler, keyed by the word's hash (Lexer.hash), so the
 * lookup allocates nothing (no lower-cased copy of the word); one comparison
 * confirms the word.
 */
const HANDLERS = new Map<number, { word: string; handler: Handler }>();
function on(words: string[], handler: Handler): void {
  for (const word of words) {
    const h = foldHash(word, 0, word.length);
    if (HANDLERS.has(h)) throw new Error(`statement keyword hash collision: ${word}`);
    HANDLERS.set(h, { word, handler });
  }
}
on(['select', 'with', 'values', 'table'], query);
on(['show', 'help', 'fetch', 'move', 'close'], fixed('read', 'read'));
on(['explain', 'describe', 'desc'], explain);
on(['insert', 'update', 'delete', 'merge', 'replace'], fixed('write', 'dml'));
on(['copy'], copy);
on(['create'], create);
on(['drop'], drop);
on(['alter', 'truncate', 'grant', 'revoke', 'comment', 'security', 'refresh', 'rename', 'reassign', 'import'], fixed('write', 'ddl'));
on(['analyze', 'analyse'], analyze);
on(['load'], load);
on(['lock'], lock);
on(
  ['vacuum', 'cluster', 'reindex', 'checkpoint', 'notify', 'call', 'do', 'handler', 'flush', 'kill', 'optimize', 'repair', 'check',
    'checksum', 'install', 'uninstall', 'purge', 'change', 'stop', 'shutdown', 'restart', 'cache', 'binlog', 'signal', 'resignal'],
  fixed('write', 'utility'),
);
for (const w of TRANSACTION_KEYWORDS) on([w], (r) => readTransactionStatement(r, w) ?? rest(r, 'write', 'unknown'));
for (const w of SESSION_KEYWORDS) on([w], (r) => readSessionStatement(r, w) ?? rest(r, 'write', 'unknown'));

/** Scans to the end and returns a fixed class, keeping what the scanner found about the session. */
export function rest(r: Reader, cls: 'read' | 'write', reason: Reason, effect?: SessionEffect): StatementResult {
  if (effect) r.st.effect(effect);
  r.finish();
  const st = r.st;
  // A read statement still becomes a write when the scanner found one inside it.
  // (A write only needs fromScan() for the effect it adds for `:=`; skipping it
  // otherwise saves an object per statement.)
  if (cls === 'read' || st.assign) {
    const found = fromScan(st);
    if (cls === 'read' && found.class === 'write') return found;
  }
  return withEffects({ class: cls, reason }, st);
}

/** SELECT / WITH / VALUES / TABLE / parenthesised query: decided by what the scanner found. */
export function query(r: Reader): StatementResult {
  r.finish();
  return fromScan(r.st);
}

/** The class of a query from its scan, in order of how certain the write is. */
export function fromScan(st: ScanState): StatementResult {
  let reason: Reason;
  if (st.dmlTop) reason = 'dml';
  else if (st.dmlNested) reason = 'writable_cte';
  else if (st.selectInto) reason = 'select_into';
  else if (st.locking) reason = 'locking_read';
  else if (st.writeFunction) reason = 'write_function';
  else if (st.assign) {
    st.effect({ kind: 'user_variable' });
    reason = 'session';
  } else return withEffects({ class: 'read', reason: st.effects ? 'session' : 'read' }, st);
  return withEffects({ class: 'write', reason }, st);
}

export function withEffects(res: StatementResult, st: ScanState): StatementResult {
  if (st.effects) res.session = res.session ? [...res.session, ...st.effects] : st.effects;
  return res;
}

/**
 * EXPLAIN / DESCRIBE: a plain EXPLAIN only plans, so it is a read whatever it
 * explains; EXPLAIN ANALYZE runs the statement and takes its class.
 */
function explain(r: Reader): StatementResult {
  r.step();
  let analyze = false;
  if (r.lx.kind === Tok.LPAREN) {
    analyze = explainOptions(r);
  } else {
    // Legacy PostgreSQL `EXPLAIN ANALYZE VERBOSE`, MySQL `EXPLAIN ANALYZE FORMAT=TREE`, `EXTENDED`.
    for (;;) {
      const w = r.word();
      if (w === 'analyze' || w === 'analyse') analyze = true;
      else if (w === 'format') {
        r.step();
        if (r.lx.kind === Tok.OP) r.step();
      } else if (w !== 'verbose' && w !== 'extended' && w !== 'partitions') break;
      r.step();
    }
  }
  return explained(r, analyze);
}

/** After EXPLAIN's options (or MariaDB's ANALYZE): the explained statement, if any. */
function explained(r: Reader, analyze: boolean): StatementResult {
  if (!startsStatement(r)) return rest(r, 'read', 'read'); // DESCRIBE t, EXPLAIN FOR CONNECTION 1
  const inner = r.readInner();
  if (!analyze) return { class: 'read', reason: 'read' };
  if (inner.class === 'write') return { ...inner, reason: 'explain_analyze_write' };
  return inner;
}

/** PostgreSQL `EXPLAIN (ANALYZE [boolean], ...)`: true when ANALYZE is on. */
function explainOptions(r: Reader): boolean {
  let analyze = false;
  r.step();
  while (r.lx.kind !== Tok.RPAREN && !r.atEnd()) {
    const w = r.word();
    r.step();
    if (w === 'analyze' || w === 'analyse') {
      const v = r.lx.kind === Tok.NUMBER ? r.lx.text() : r.word();
      analyze = !(v === 'false' || v === 'off' || v === '0');
    }
  }
  r.step();
  return analyze;
}

const STATEMENT_STARTS = new Set(['select', 'with', 'values', 'table', 'insert', 'update', 'delete', 'merge', 'replace',
  'execute', 'create', 'declare', 'prepare']);

function startsStatement(r: Reader): boolean {
  return r.lx.kind === Tok.LPAREN || STATEMENT_STARTS.has(r.word());
}

/** MariaDB `ANALYZE [FORMAT=JSON] SELECT ...` runs the statement; ANALYZE TABLE (and PostgreSQL ANALYZE) writes statistics. */
function analyze(r: Reader): StatementResult {
  if (r.ctx.dialect === 'mysql') {
    r.step();
    if (r.is('format')) {
      r.step();
      if (r.lx.kind === Tok.OP) r.step();
      r.step();
    }
    const maintenance = r.is('table') || r.is('no_write_to_binlog') || r.is('local');
    if (!maintenance && startsStatement(r)) return explained(r, true);
  }
  return rest(r, 'write', 'utility');
}

/** COPY ... FROM is a load; COPY ... TO STDOUT a read of its table or query; TO a server file or program writes there. */
function copy(r: Reader): StatementResult {
  r.finish();
  const st = r.st;
  if (st.copyDirection === KW.TO) {
    if (!st.copyToStdout) return withEffects({ class: 'write', reason: 'utility' }, st);
    return fromScan(st);
  }
  return withEffects({ class: 'write', reason: 'dml' }, st);
}

/** CREATE: DDL; a temporary object is also session state. Routine bodies may hold `;` inside BEGIN ... END. */
function create(r: Reader): StatementResult {
  r.blocky = true;
  r.step();
  let temp = false;
  for (;;) {
    const w = r.word();
    if (w === 'temp' || w === 'temporary') temp = true;
    else if (w !== 'or' && w !== 'replace' && w !== 'global' && w !== 'local' && w !== 'unlogged') break;
    r.step();
  }
  return rest(r, 'write', 'ddl', temp ? { kind: 'temp_table' } : undefined);
}

function drop(r: Reader): StatementResult {
  r.step();
  if (r.ctx.dialect === 'mysql' && r.is('prepare')) {
    r.step();
    const name = r.name();
    return rest(r, 'write', 'session', { kind: 'sql_deallocate', name });
  }
  return rest(r, 'write', 'ddl', r.is('temporary') ? { kind: 'temp_table' } : undefined);
}

/** PostgreSQL LOAD 'library' changes the session; MySQL LOAD DATA / LOAD XML loads rows. */
function load(r: Reader): StatementResult {
  r.step();
  if (r.ctx.dialect === 'postgres') return rest(r, 'write', 'session', { kind: 'load' });
  if (r.is('index')) return rest(r, 'write', 'utility');
  return rest(r, 'write', 'dml');
}

/** MySQL LOCK TABLES holds locks for the session; PostgreSQL LOCK locks inside a transaction. */
function lock(r: Reader): StatementResult {
  r.step();
  if (r.ctx.dialect === 'mysql' && (r.is('tables') || r.is('table'))) return rest(r, 'write', 'session', { kind: 'lock_tables' });
  return rest(r, 'write', 'utility');
}
