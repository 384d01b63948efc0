import type { Classification, SessionEffect } from '../../sql/index.js';

/*
 * What a MySQL client session carries that a pooled server connection must be
 * made to match before it runs the session's statements: the current database
 * (COM_INIT_DB / USE), SET [SESSION] variables and SET NAMES. Pure: the
 * session compares this with the connection's mirror of the same fields and
 * sends the statements `replayFor` returns.
 */

/** The part of a backend connection's state that replay reads and updates. */
export interface ConnSettings {
  db: string | null;
  settings: Map<string, string>;
  names: string | null;
}

/**
 * Effects whose state lives only on the connection that ran them: the
 * session stays on that (primary) connection for good.
 */
const PINNING = new Set<SessionEffect['kind']>([
  'user_variable',
  'temp_table',
  'advisory_lock',
  'lock_tables',
  'calc_found_rows',
  'sql_prepare',
  'sql_execute',
  'sql_deallocate',
  'set_role',
  'set_session_authorization',
  'cursor',
  'listen',
  'load',
]);

export type MysqlEffectVerdict = 'none' | 'record' | 'pin';

/**
 * What a statement's session effects require. A SET whose value depends on
 * the connection it runs on (`@@sql_mode`, `@var`) cannot be replayed
 * faithfully elsewhere, nor can SET SESSION TRANSACTION or a SET NAMES inside
 * multi-statement text: those pin.
 */
export function mysqlEffectVerdict(c: Classification): MysqlEffectVerdict {
  let verdict: MysqlEffectVerdict = 'none';
  for (const e of c.session ?? []) {
    if (PINNING.has(e.kind)) return 'pin';
    if (e.kind === 'set') {
      if (e.name === 'transaction_characteristics' || e.value === undefined || e.value.includes('@')) return 'pin';
      verdict = 'record';
    } else if (e.kind === 'set_names') {
      if (c.statements !== 1) return 'pin';
      verdict = 'record';
    } else if (e.kind === 'use') verdict = 'record';
  }
  return verdict;
}

/** Statements that read what the previous statement left on its connection. */
const DEPENDENT = /(?:\brow_count\s*\(|\bshow\s+(?:count\s*\(\s*\*\s*\)\s+)?(?:warnings|errors)\b|@@(?:session\.)?(?:warning_count|error_count)\b)/i;
const FOUND_ROWS_CALL = /\bfound_rows\s*\(/i;
const CALC_FOUND_ROWS = /\bsql_calc_found_rows\b/i;

/**
 * LAST_INSERT_ID(), FOUND_ROWS(), ROW_COUNT(), SHOW WARNINGS / ERRORS: must run where the previous statement ran.
 * A SELECT SQL_CALC_FOUND_ROWS makes the count itself, so it does not depend on the previous
 * statement (even when the same text also calls FOUND_ROWS()): it is routed afresh, to the
 * primary, and pins there; otherwise it could run on a replica connection kept after a read's
 * warning, not pin there, and leave the FOUND_ROWS() that follows to another connection.
 */
export function dependsOnPrevious(c: Classification, text: string | null): boolean {
  for (const e of c.session ?? []) if (e.kind === 'last_insert_id') return true;
  if (text === null) return false;
  if (DEPENDENT.test(text)) return true;
  return FOUND_ROWS_CALL.test(text) && !CALC_FOUND_ROWS.test(text);
}

/** MySQL identifiers in SET: back-quoted, dots separate parts. */
function quoteName(name: string): string {
  return name
    .split('.')
    .map((p) => `\`${p.replace(/`/g, '``')}\``)
    .join('.');
}

/** Character set and collation of the collation ids drivers commonly log in with (to undo a SET NAMES). */
const LOGIN_COLLATIONS: Record<number, [string, string]> = {
  8: ['latin1', 'latin1_swedish_ci'],
  33: ['utf8mb3', 'utf8mb3_general_ci'],
  45: ['utf8mb4', 'utf8mb4_general_ci'],
  46: ['utf8mb4', 'utf8mb4_bin'],
  63: ['binary', 'binary'],
  83: ['utf8mb3', 'utf8mb3_bin'],
  192: ['utf8mb3', 'utf8mb3_unicode_ci'],
  224: ['utf8mb4', 'utf8mb4_unicode_ci'],
};

/** `SET NAMES` back to what a login with collation id `charset` gives, or null when the id is not known here. */
export function loginNames(charset: number): string | null {
  const c = LOGIN_COLLATIONS[charset];
  return c ? `SET NAMES ${c[0]} COLLATE ${c[1]}` : null;
}

/** The database and settings of one session, changed only by statements that succeeded. */
export class MysqlSessionState {
  settings = new Map<string, string>();
  names: string | null = null;
  private cachedKey: string | null = '';

  constructor(public db: string | null) {}

  /** Comparable with `stateKey(conn)`: equal keys need no replay (the database is compared apart). */
  get key(): string {
    if (this.cachedKey === null) this.cachedKey = keyOf(this.settings, this.names);
    return this.cachedKey;
  }

  /** Applies the effects of a statement that succeeded; `text` is the statement (for SET NAMES). */
  apply(effects: readonly SessionEffect[] | undefined, text: string | null): void {
    for (const e of effects ?? []) {
      if (e.kind === 'set' && e.value !== undefined) {
        this.settings.delete(e.name);
        if (e.value.toUpperCase() !== 'DEFAULT') this.settings.set(e.name, e.value);
        this.cachedKey = null;
      } else if (e.kind === 'set_names' && text !== null) {
        this.names = text.trim().replace(/;\s*$/, '');
        this.cachedKey = null;
      } else if (e.kind === 'use') {
        this.db = e.database;
      }
    }
  }

  /** COM_RESET_CONNECTION / COM_CHANGE_USER: settings back to the login's (the database stays). */
  reset(): void {
    this.settings.clear();
    this.names = null;
    this.cachedKey = '';
  }

  /**
   * The statements that bring a connection's settings to this session's
   * (null: none needed; undefined: impossible, the connection's SET NAMES cannot be undone).
   */
  replayFor(conn: ConnSettings, charset: number): string[] | null | undefined {
    const out: string[] = [];
    if (conn.names !== this.names) {
      const names = this.names ?? loginNames(charset);
      if (names === null) return undefined;
      out.push(names);
    }
    const parts: string[] = [];
    for (const name of conn.settings.keys()) if (!this.settings.has(name)) parts.push(`${quoteName(name)} = DEFAULT`);
    for (const [name, value] of this.settings) if (conn.settings.get(name) !== value) parts.push(`${quoteName(name)} = ${value}`);
    if (parts.length > 0) out.push(`SET SESSION ${parts.join(', ')}`);
    return out.length > 0 ? out : null;
  }

  /** After a successful replay (or a statement that succeeded): the connection carries this session's settings. */
  copyTo(conn: ConnSettings): void {
    conn.settings = new Map(this.settings);
    conn.names = this.names;
    conn.db = this.db;
  }
}

export function stateKey(conn: ConnSettings): string {
  return keyOf(conn.settings, conn.names);
}

function keyOf(settings: Map<string, string>, names: string | null): string {
  return settings.size === 0 && names === null ? '' : JSON.stringify([names, [...settings]]);
}
