import { foldHash, wordEquals, wordStartsWith } from './tokenizer.js';
import type { Dialect } from './types.js';

/**
 * Functions whose call makes a statement a write: they change data or server
 * state, consume a sequence, take session-level locks, or return session state
 * that only the primary connection has. Entries are lower case; an entry ending
 * in `*` matches every name with that prefix.
 */
export const DEFAULT_WRITE_FUNCTIONS: Readonly<Record<Dialect, readonly string[]>> = {
  postgres: [
    'nextval', 'setval', 'currval', 'lastval',
    'pg_advisory_*', 'pg_try_advisory_*',
    'set_config', 'txid_current', 'pg_current_xact_id', 'pg_notify',
    'lo_create', 'lo_creat', 'lo_import', 'lo_export', 'lo_unlink', 'lo_put', 'lo_from_bytea', 'lo_truncate', 'lo_open', 'lowrite',
    'dblink_exec',
    'pg_terminate_backend', 'pg_cancel_backend', 'pg_reload_conf', 'pg_switch_wal', 'pg_create_restore_point',
    'pg_create_physical_replication_slot', 'pg_create_logical_replication_slot', 'pg_drop_replication_slot',
  ],
  mysql: [
    'get_lock', 'release_lock', 'release_all_locks',
    'last_insert_id', // only with an argument; handled by the scanner
    'nextval', 'setval', 'lastval',
  ],
};

/** Write functions that also leave a session-level lock behind. */
export function isSessionLockFunction(dialect: Dialect, src: string, start: number, end: number): boolean {
  if (dialect === 'mysql') {
    return wordEquals(src, start, end, 'get_lock') || wordEquals(src, start, end, 'release_lock') || wordEquals(src, start, end, 'release_all_locks');
  }
  if (!wordStartsWith(src, start, end, 'pg_advisory_') && !wordStartsWith(src, start, end, 'pg_try_advisory_')) return false;
  // Transaction-level advisory locks end with the transaction: a write, but no session state.
  return src.slice(start, end).toLowerCase().indexOf('_xact_') < 0;
}

/**
 * The effective write-function list of one classifier: the defaults of the
 * dialect plus `writeFunctions`, minus anything named in `readFunctions`
 * (a read entry wins, also against a default prefix). Lookups by a cheap
 * case-folded hash first, so most function calls cost no allocation.
 */
export class WriteFunctionSet {
  private readonly exact = new Map<number, string[]>();
  private readonly prefixes: string[] = [];
  private readonly reads = new Map<number, string[]>();

  constructor(dialect: Dialect, extraWrites: readonly string[] = [], reads: readonly string[] = []) {
    for (const name of [...DEFAULT_WRITE_FUNCTIONS[dialect], ...extraWrites]) {
      const lower = normalizeName(name);
      if (lower === '') continue;
      if (lower.endsWith('*')) this.prefixes.push(lower.slice(0, -1));
      else addTo(this.exact, lower);
    }
    for (const name of reads) {
      const lower = normalizeName(name);
      if (lower !== '') addTo(this.reads, lower);
    }
  }

  /** True when the function named by a WORD src[start, end) is a write function. */
  hasWord(src: string, start: number, end: number): boolean {
    return this.hasHashedWord(foldHash(src, start, end), src, start, end);
  }

  /** hasWord() for a word whose foldHash() is known (Lexer.hash). */
  hasHashedWord(h: number, src: string, start: number, end: number): boolean {
    if (this.reads.size > 0 && matches(this.reads.get(h), src, start, end)) return false;
    if (matches(this.exact.get(h), src, start, end)) return true;
    for (const p of this.prefixes) if (wordStartsWith(src, start, end, p)) return true;
    return false;
  }

  /** The same for an already unquoted, lower-cased name (quoted identifiers). */
  hasName(name: string): boolean {
    return this.hasWord(name, 0, name.length);
  }
}

/** Config names may be schema-qualified or quoted: keep the last part, unquoted, lower case. */
function normalizeName(name: string): string {
  const last = name.trim().split('.').pop() ?? '';
  return last.replace(/^["`]|["`]$/g, '').toLowerCase();
}

function addTo(map: Map<number, string[]>, lower: string): void {
  const h = foldHash(lower, 0, lower.length);
  const list = map.get(h);
  if (list) list.push(lower);
  else map.set(h, [lower]);
}

function matches(list: string[] | undefined, src: string, start: number, end: number): boolean {
  if (!list) return false;
  for (const name of list) if (wordEquals(src, start, end, name)) return true;
  return false;
}
