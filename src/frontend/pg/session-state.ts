import { createHash } from 'node:crypto';
import type { PgBackendConn } from '../../backend/pg/conn.js';
import type { Classification, SessionEffect } from '../../sql/index.js';

/*
 * What a client session carries that a pooled server connection must be made
 * to match before it runs the session's statements:
 *   - its SET/RESET settings (replayed as one Query when a connection differs);
 *   - its named prepared statements (prepared lazily, under a name derived
 *     from the statement's text, on whichever connection runs them).
 * Per connection we remember which settings and which statements it has, in a
 * WeakMap, so the backend layer stays unaware of sessions.
 */

/** A client's named prepared statement. */
export interface ClientStatement {
  /** Server-side name: the same text and parameter types give the same name on every connection. */
  serverName: string;
  /** A private copy of the client's Parse frame, to prepare it on other connections. */
  parse: Buffer;
  classification: Classification;
}

/** Server-side name for a statement: `sy_` + 20 hex digits of SHA-1 over text and parameter types. */
export function serverStatementName(parseBody: Buffer, nameEnd: number): string {
  // The Parse body after the name (query text + parameter types) identifies the statement.
  return 'sy_' + createHash('sha1').update(parseBody.subarray(nameEnd + 1)).digest('hex').slice(0, 20);
}

/** Per-connection state known to sessions. */
export interface ConnState {
  /** Settings key the connection carries ('' = none beyond its startup parameters). */
  settingsKey: string;
  /** Server statements prepared on it, least recently used first. */
  prepared: Map<string, true>;
}

const states = new WeakMap<PgBackendConn, ConnState>();

export function connState(conn: PgBackendConn): ConnState {
  let s = states.get(conn);
  if (!s) {
    s = { settingsKey: '', prepared: new Map() };
    states.set(conn, s);
  }
  return s;
}

/** Marks `name` as most recently used; returns the names to evict beyond `capacity`. */
export function touchPrepared(state: ConnState, name: string, capacity: number): string[] {
  state.prepared.delete(name);
  state.prepared.set(name, true);
  const evict: string[] = [];
  for (const old of state.prepared.keys()) {
    if (state.prepared.size - evict.length <= capacity) break;
    if (old !== name) evict.push(old);
  }
  for (const e of evict) state.prepared.delete(e);
  return evict;
}

/**
 * Session effects that cannot be replayed on another connection: the session stays on one.
 * Not `sql_deallocate`: DEALLOCATE of a client's protocol-level statement is answered by the
 * session itself (it only forgets the client's name), and one of an SQL-level PREPAREd
 * statement runs on the connection the PREPARE already pinned; pinning for it would keep
 * a session (Rails' adapter DEALLOCATEs its statements) on one connection for nothing.
 */
const PINNING = new Set<SessionEffect['kind']>([
  'temp_table',
  'listen',
  'advisory_lock',
  'session_config',
  'sql_prepare',
  'sql_execute',
  'set_role',
  'set_session_authorization',
  'load',
]);

/** Settings whose SET form differs from `SET name = value`, or that cannot be replayed. */
const NOT_REPLAYABLE = new Set(['transaction_characteristics', 'role', 'session_authorization']);

export type EffectVerdict = 'none' | 'record' | 'pin';

/**
 * What a statement's session effects require: pinning (state that lives only
 * on the connection), recording (settings replayed elsewhere), or nothing.
 * A SET inside a transaction block pins, because whether it survives depends
 * on how that transaction ends.
 */
export function effectVerdict(c: Classification, inTransaction: boolean): EffectVerdict {
  let verdict: EffectVerdict = 'none';
  for (const e of c.session ?? []) {
    if (PINNING.has(e.kind)) return 'pin';
    if (e.kind === 'cursor' && e.hold) return 'pin';
    if (e.kind === 'set') {
      if (e.local) continue;
      if (NOT_REPLAYABLE.has(e.name) || e.value === undefined || inTransaction) return 'pin';
      verdict = 'record';
    } else if (e.kind === 'reset' || (e.kind === 'discard' && e.what.toLowerCase() === 'all')) {
      if (inTransaction) return 'pin';
      verdict = 'record';
    }
  }
  return verdict;
}

/**
 * The class a new batch is routed by. A read whose session effect pins (a `WITH HOLD`
 * cursor, SQL-level `PREPARE` of a SELECT) goes to the primary on the read/write
 * listener: a session is only pinned to a primary connection there, and on a replica the
 * pin would be refused and the connection released, so the FETCH or EXECUTE that follows
 * would find nothing. On the read-only listener it stays a read, and the session is pinned
 * to the replica connection that has the state.
 */
export function routingClass(c: Classification, listener: 'rw' | 'ro', txStatus: 'I' | 'T' | 'E'): Classification {
  if (c.class !== 'read' || listener !== 'rw' || c.session === undefined) return c;
  if (effectVerdict(c, txStatus !== 'I' || c.transaction !== undefined) !== 'pin') return c;
  return { ...c, class: 'write' };
}

/** The SET/RESET settings of one session, in the order they were made. */
export class SessionSettings {
  /** Made by the first SET: most sessions never change a setting, and an empty Map costs every one of them. */
  private values: Map<string, string> | null = null;
  private cachedKey: string | null = '';

  /** Key comparable with a connection's settingsKey. */
  get key(): string {
    if (this.cachedKey === null) this.cachedKey = this.values === null || this.values.size === 0 ? '' : JSON.stringify([...this.values]);
    return this.cachedKey;
  }

  /** Applies the effects of a statement that completed without error outside a transaction. */
  apply(effects: readonly SessionEffect[] | undefined): void {
    if (!effects || effects.length === 0) return;
    this.values ??= new Map();
    for (const e of effects) {
      if (e.kind === 'set' && !e.local && e.value !== undefined) {
        this.values.delete(e.name);
        if (e.value.toUpperCase() !== 'DEFAULT') this.values.set(e.name, e.value);
      } else if (e.kind === 'reset') {
        if (e.name === 'all') this.values.clear();
        else this.values.delete(e.name);
      } else if (e.kind === 'discard' && e.what.toLowerCase() === 'all') {
        this.values.clear();
      }
      this.cachedKey = null;
    }
  }

  /** One Query that brings a connection from any settings to this session's. */
  replaySql(): string {
    const parts = ['RESET ALL'];
    for (const [name, value] of this.values ?? []) {
      parts.push(name === 'timezone' ? `SET TIME ZONE ${value}` : `SET ${quoteName(name)} = ${value}`);
    }
    return parts.join('; ');
  }
}

/** GUC names are identifiers, possibly dotted (`myapp.tenant`): quote each part. */
function quoteName(name: string): string {
  return name
    .split('.')
    .map((p) => `"${p.replace(/"/g, '""')}"`)
    .join('.');
}
