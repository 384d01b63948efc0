/**
 * Public types of the SQL statement classifier. The proxy routes on `class`;
 * `reason` says why (metrics, `switchyard classify --json`); `transaction` and
 * `session` feed the session layer (pinning, replay, transaction tracking).
 */
export type Dialect = 'postgres' | 'mysql';
export type StatementClass = 'read' | 'write';
export type Reason =
  | 'read'
  | 'dml'
  | 'ddl'
  | 'locking_read'
  | 'select_into'
  | 'write_function'
  | 'writable_cte'
  | 'explain_analyze_write'
  | 'transaction'
  | 'session'
  | 'utility'
  | 'multi_statement'
  | 'unknown'
  | 'empty';

export interface TransactionInfo {
  op:
    | 'begin'
    | 'commit'
    | 'rollback'
    | 'savepoint'
    | 'release'
    | 'rollback_to'
    | 'set_transaction'
    | 'prepare_transaction'
    | 'commit_prepared'
    | 'rollback_prepared'
    | 'xa';
  readOnly?: boolean;
  isolation?: string;
  chain?: boolean;
  consistentSnapshot?: boolean;
}

export type SessionEffect =
  | { kind: 'set'; name: string; local: boolean; value?: string }
  | { kind: 'reset'; name: string | 'all' }
  | { kind: 'discard'; what: string }
  | { kind: 'set_role' }
  | { kind: 'set_session_authorization' }
  | { kind: 'set_names' }
  | { kind: 'autocommit'; on: boolean }
  | { kind: 'use'; database: string }
  | { kind: 'temp_table' }
  | { kind: 'cursor'; hold: boolean }
  | { kind: 'sql_prepare'; name: string }
  | { kind: 'sql_execute'; name: string }
  | { kind: 'sql_deallocate'; name: string | 'all' }
  | { kind: 'listen' }
  | { kind: 'unlisten' }
  | { kind: 'load' }
  | { kind: 'lock_tables' }
  | { kind: 'unlock_tables' }
  | { kind: 'advisory_lock' }
  /** PostgreSQL set_config(name, value, is_local) not known to be local: a setting the session layer cannot replay. */
  | { kind: 'session_config' }
  | { kind: 'user_variable' }
  | { kind: 'calc_found_rows' }
  | { kind: 'last_insert_id' };

export interface Hints {
  route?: 'primary' | 'replica';
  maxLagMs?: number;
}

export interface Classification {
  class: StatementClass;
  reason: Reason;
  /** Number of (non-empty) statements in the text. */
  statements: number;
  /** Transaction control: the first such statement found. */
  transaction?: TransactionInfo;
  /** Session effects found in any statement, in order. */
  session?: SessionEffect[];
  /** From the text's leading comment(s). */
  hints: Hints;
}

export interface ClassifierOptions {
  dialect: Dialect;
  /** More functions whose call makes a statement a write (`name` or `prefix*`). */
  writeFunctions?: string[];
  /** Functions known read-only: never make a statement a write, even if listed as write. */
  readFunctions?: string[];
  /** Entries of the LRU cache of `Classifier`; default 10000, 0 disables caching. */
  cacheSize?: number;
}

/** One statement of a text, as `explain()` reports it. */
export interface StatementDetail {
  /** Source text of the statement (without the separating `;`). */
  text: string;
  class: StatementClass;
  reason: Reason;
  transaction?: TransactionInfo;
  session?: SessionEffect[];
}

export interface Explanation extends Classification {
  details: StatementDetail[];
}
