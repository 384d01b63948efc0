import type { Reader, StatementResult } from './reader.js';
import { unquoteString } from './reader.js';
import { rest } from './statement.js';
import { Tok, identifierName } from './tokenizer.js';
import { done, readModes } from './transaction-statements.js';
import type { SessionEffect, TransactionInfo } from './types.js';

export const SESSION_KEYWORDS = ['set', 'reset', 'discard', 'use', 'declare', 'prepare', 'execute', 'deallocate', 'listen', 'unlisten', 'unlock'];

/**
 * Statements that change session state. They are class write, reason session
 * (the session layer replays or pins them), except DECLARE CURSOR and PREPARE
 * of a read, which are reads with a session effect. Returns null when `first`
 * is none of them.
 */
export function readSessionStatement(r: Reader, first: string): StatementResult | null {
  switch (first) {
    case 'set':
      r.step();
      return r.ctx.dialect === 'mysql' ? mysqlSet(r) : postgresSet(r);
    case 'reset':
      r.step();
      if (r.ctx.dialect === 'mysql') return rest(r, 'write', 'utility'); // RESET MASTER, RESET QUERY CACHE, ...
      return rest(r, 'write', 'session', { kind: 'reset', name: r.accept('all') ? 'all' : settingName(r) });
    case 'discard':
      r.step();
      return rest(r, 'write', 'session', { kind: 'discard', what: r.word() });
    case 'use':
      r.step();
      return rest(r, 'write', 'session', { kind: 'use', database: r.name() });
    case 'declare':
      return declareCursor(r);
    case 'prepare':
      return prepare(r);
    case 'execute':
      r.step();
      return rest(r, 'write', 'session', { kind: 'sql_execute', name: r.name() });
    case 'deallocate':
      r.step();
      r.accept('prepare');
      return rest(r, 'write', 'session', { kind: 'sql_deallocate', name: r.accept('all') ? 'all' : statementName(r) });
    case 'listen':
      return rest(r, 'write', 'session', { kind: 'listen' });
    case 'unlisten':
      return rest(r, 'write', 'session', { kind: 'unlisten' });
    case 'unlock':
      return rest(r, 'write', 'session', { kind: 'unlock_tables' });
  }
  return null;
}

/**
 * The name of a prepared statement as the server would look it up: PostgreSQL
 * keeps the case of a quoted identifier (`DEALLOCATE "S_1"` names `S_1`, the
 * name a driver may have given a protocol-level statement); MySQL's names are
 * case-insensitive, so they stay folded.
 */
function statementName(r: Reader): string {
  const lx = r.lx;
  if (r.ctx.dialect === 'postgres' && lx.kind === Tok.QIDENT) return identifierName(lx.src, lx.kind, lx.start, lx.end, false);
  return r.name();
}

/** A possibly dotted setting name (`work_mem`, `myapp.user_id`), lower case; TIME ZONE is `timezone`. */
function settingName(r: Reader): string {
  if (r.accept('time')) {
    r.accept('zone');
    return 'timezone';
  }
  if (r.is('session') || r.is('transaction')) {
    // RESET SESSION AUTHORIZATION, SET TRANSACTION ISOLATION LEVEL ...
    const a = r.word();
    r.step();
    const b = r.word();
    r.step();
    return `${a}_${b}`;
  }
  let name = r.name();
  r.step();
  while (r.lx.kind === Tok.DOT) {
    r.step();
    name += `.${r.name()}`;
    r.step();
  }
  return name;
}

function postgresSet(r: Reader): StatementResult {
  let local = false;
  if (r.accept('session')) {
    if (r.accept('characteristics')) {
      r.accept('as');
      r.accept('transaction');
      return setEffect(r, 'transaction_characteristics', false);
    }
    if (r.accept('authorization')) return rest(r, 'write', 'session', { kind: 'set_session_authorization' });
  } else if (r.accept('local')) local = true;
  if (r.accept('transaction')) return setTransaction(r);
  if (r.accept('role')) return rest(r, 'write', 'session', { kind: 'set_role' });
  if (r.accept('names')) return rest(r, 'write', 'session', { kind: 'set_names' });
  if (r.accept('schema')) return setEffect(r, 'search_path', local);
  if (r.accept('xml')) {
    r.accept('option');
    return setEffect(r, 'xmloption', local);
  }
  // SET CONSTRAINTS only lasts for the transaction.
  if (r.accept('constraints')) return setEffect(r, 'constraints', true);
  const name = settingName(r);
  if (r.is('to') || (r.lx.kind === Tok.OP && r.lx.text() === '=')) r.step();
  return setEffect(r, name, local);
}

/** Records `name = <the rest of the statement>`. */
function setEffect(r: Reader, name: string, local: boolean): StatementResult {
  const from = r.lx.start;
  r.finish();
  const value = r.src.slice(from, Math.max(from, r.lastEnd)).trim();
  return rest(r, 'write', 'session', { kind: 'set', name, local, value });
}

function setTransaction(r: Reader): StatementResult {
  const info: TransactionInfo = { op: 'set_transaction' };
  readModes(r, info);
  return done(r, info);
}

/**
 * MySQL SET: a comma-separated list of assignments to user variables (@x),
 * session variables (x, SESSION x, @@x, @@session.x) or global ones (GLOBAL x,
 * @@global.x: server state, class write reason utility), or one of the
 * special forms (NAMES, CHARACTER SET, TRANSACTION, PASSWORD, ROLE, STATEMENT).
 */
function mysqlSet(r: Reader): StatementResult {
  if (r.accept('transaction')) return setTransaction(r);
  if (r.accept('names') || r.accept('charset')) return rest(r, 'write', 'session', { kind: 'set_names' });
  if (r.is('character')) return rest(r, 'write', 'session', { kind: 'set_names' });
  if (r.accept('role')) return rest(r, 'write', 'session', { kind: 'set_role' });
  if (r.is('password') || r.is('resource')) return rest(r, 'write', 'utility');
  if (r.accept('default')) return rest(r, 'write', 'ddl'); // SET DEFAULT ROLE
  if (r.accept('statement')) return setStatement(r);
  let global = false;
  for (;;) {
    // 1. The target and its scope.
    let scope = r.word();
    let name = '';
    if (scope === 'global' || scope === 'persist' || scope === 'persist_only') global = true;
    if (scope === 'global' || scope === 'persist' || scope === 'persist_only' || scope === 'session' || scope === 'local') {
      r.step();
      if (r.is('transaction')) {
        if (!global) r.st.effect({ kind: 'set', name: 'transaction_characteristics', local: false, value: restText(r) });
        break;
      }
    }
    const lx = r.lx;
    if (lx.kind === Tok.VAR) r.st.effect({ kind: 'user_variable' });
    else if (lx.kind === Tok.SYSVAR) {
      const m = /^@@(?:(global|persist|persist_only|session|local)\.)?(.*)$/i.exec(lx.text());
      scope = (m?.[1] ?? 'session').toLowerCase();
      if (scope === 'global' || scope === 'persist' || scope === 'persist_only') global = true;
      name = (m?.[2] ?? '').replace(/`/g, '').toLowerCase();
    } else name = r.name();
    r.step();
    if ((lx.kind === Tok.OP && lx.text() === '=') || lx.kind === Tok.ASSIGN) r.step();
    // 2. The value: up to a comma at depth 0.
    const from = lx.start;
    while (!r.atEnd() && !(lx.kind === Tok.COMMA && r.parenDepth === 0)) r.step();
    const value = r.src.slice(from, Math.max(from, r.lastEnd)).trim();
    if (name !== '' && !global) r.st.effect(sessionVariable(name, value));
    if (lx.kind !== Tok.COMMA) break;
    r.step();
  }
  return rest(r, 'write', global ? 'utility' : 'session');
}

function sessionVariable(name: string, value: string): SessionEffect {
  if (name === 'autocommit') {
    const v = value.replace(/['"]/g, '').toLowerCase();
    return { kind: 'autocommit', on: v === '1' || v === 'on' || v === 'true' };
  }
  return { kind: 'set', name, local: false, value };
}

function restText(r: Reader): string {
  const from = r.lx.start;
  r.finish();
  return r.src.slice(from, Math.max(from, r.lastEnd)).trim();
}

/** MariaDB `SET STATEMENT var = value [, ...] FOR statement`: the class of the statement. */
function setStatement(r: Reader): StatementResult {
  while (!r.atEnd() && !(r.is('for') && r.parenDepth === 0)) r.step();
  if (!r.accept('for') || r.atEnd()) return rest(r, 'write', 'unknown');
  return r.readInner();
}

/** PostgreSQL DECLARE name [BINARY] [ASENSITIVE | INSENSITIVE] [NO] [SCROLL] CURSOR [WITH[OUT] HOLD] FOR query. */
function declareCursor(r: Reader): StatementResult {
  if (r.ctx.dialect === 'mysql') return rest(r, 'write', 'unknown'); // only valid inside routines
  r.step();
  r.step(); // the cursor's name
  for (let i = 0; i < 5 && !r.is('cursor') && !r.atEnd(); i++) r.step();
  if (!r.accept('cursor')) return rest(r, 'write', 'unknown');
  let hold = false;
  if (r.accept('with')) hold = r.accept('hold');
  else if (r.accept('without')) r.accept('hold');
  if (!r.accept('for')) return rest(r, 'write', 'unknown');
  return withSessionEffect(r.readInner(), { kind: 'cursor', hold });
}

/** SQL-level PREPARE (and PostgreSQL's PREPARE TRANSACTION 'gid'). */
function prepare(r: Reader): StatementResult {
  r.step();
  if (r.ctx.dialect === 'postgres' && r.is('transaction')) {
    r.step();
    if (r.lx.kind === Tok.STRING) return done(r, { op: 'prepare_transaction' });
    return rest(r, 'write', 'unknown');
  }
  const name = r.name();
  r.step();
  const effect: SessionEffect = { kind: 'sql_prepare', name };
  if (r.ctx.dialect === 'mysql') {
    // PREPARE s FROM 'text': classify the text; FROM @var cannot be known here.
    if (!r.accept('from') || r.lx.kind !== Tok.STRING) return rest(r, 'write', 'session', effect);
    const inner = r.nested(unescapeMysql(unquoteString(r.lx.text())));
    r.finish();
    return withSessionEffect(inner, effect);
  }
  if (r.lx.kind === Tok.LPAREN) {
    while (!r.atEnd() && !(r.kind() === Tok.RPAREN && r.parenDepth === 1)) r.step();
    r.step();
  }
  if (!r.accept('as')) return rest(r, 'write', 'session', effect);
  return withSessionEffect(r.readInner(), effect);
}

/** A read keeps class read but says why it matters (reason session); a write keeps its reason. */
function withSessionEffect(inner: StatementResult, effect: SessionEffect): StatementResult {
  const session = [effect, ...(inner.session ?? [])];
  if (inner.class === 'read') return { class: 'read', reason: 'session', session };
  return { ...inner, session };
}

function unescapeMysql(s: string): string {
  return s.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c === '0' ? '\0' : c));
}
