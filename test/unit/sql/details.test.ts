import { describe, expect, it } from 'vitest';
import { classify, explain, type ClassifierOptions } from '../../../src/sql/index.js';

const pg: ClassifierOptions = { dialect: 'postgres' };
const my: ClassifierOptions = { dialect: 'mysql' };

describe('transaction info', () => {
  it.each([
    ['BEGIN', pg, { op: 'begin' }],
    ['BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE', pg, { op: 'begin', isolation: 'serializable', readOnly: true }],
    ['START TRANSACTION ISOLATION LEVEL REPEATABLE READ READ WRITE', pg, { op: 'begin', isolation: 'repeatable read', readOnly: false }],
    ['START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY', my, { op: 'begin', consistentSnapshot: true, readOnly: true }],
    ['COMMIT AND CHAIN', pg, { op: 'commit', chain: true }],
    ['ROLLBACK WORK AND NO CHAIN', my, { op: 'rollback', chain: false }],
    ['END', pg, { op: 'commit' }],
    ['ABORT', pg, { op: 'rollback' }],
    ['SAVEPOINT a', pg, { op: 'savepoint' }],
    ['RELEASE SAVEPOINT a', my, { op: 'release' }],
    ['ROLLBACK TO a', pg, { op: 'rollback_to' }],
    ['SET TRANSACTION ISOLATION LEVEL READ COMMITTED', pg, { op: 'set_transaction', isolation: 'read committed' }],
    ["PREPARE TRANSACTION 'g'", pg, { op: 'prepare_transaction' }],
    ["COMMIT PREPARED 'g'", pg, { op: 'commit_prepared' }],
    ["ROLLBACK PREPARED 'g'", pg, { op: 'rollback_prepared' }],
    ["XA START 'x'", my, { op: 'xa' }],
    ['SELECT 1; BEGIN READ ONLY; COMMIT', pg, { op: 'begin', readOnly: true }],
  ] as const)('%s', (sql, opts, info) => {
    expect(classify(sql, opts).transaction).toEqual(info);
  });

  it('has no transaction info for other statements', () => {
    expect(classify('SELECT 1', pg).transaction).toBeUndefined();
    expect(classify("PREPARE transaction AS SELECT 1", pg).transaction).toBeUndefined();
  });
});

describe('session effects', () => {
  it.each([
    ['SET search_path TO a, b', pg, [{ kind: 'set', name: 'search_path', local: false, value: 'a, b' }]],
    ['SET LOCAL work_mem = 64', pg, [{ kind: 'set', name: 'work_mem', local: true, value: '64' }]],
    ["SET myapp.user = 'x'", pg, [{ kind: 'set', name: 'myapp.user', local: false, value: "'x'" }]],
    ["SET TIME ZONE 'UTC'", pg, [{ kind: 'set', name: 'timezone', local: false, value: "'UTC'" }]],
    ["SET SCHEMA 'app'", pg, [{ kind: 'set', name: 'search_path', local: false, value: "'app'" }]],
    ['SET ROLE admin', pg, [{ kind: 'set_role' }]],
    ['SET SESSION AUTHORIZATION bob', pg, [{ kind: 'set_session_authorization' }]],
    ["SET NAMES 'UTF8'", pg, [{ kind: 'set_names' }]],
    ['RESET ALL', pg, [{ kind: 'reset', name: 'all' }]],
    ['RESET statement_timeout', pg, [{ kind: 'reset', name: 'statement_timeout' }]],
    ['DISCARD ALL', pg, [{ kind: 'discard', what: 'all' }]],
    ['CREATE TEMP TABLE x (a int)', pg, [{ kind: 'temp_table' }]],
    ['SELECT 1 INTO TEMP x', pg, [{ kind: 'temp_table' }]],
    ['DECLARE c CURSOR WITH HOLD FOR SELECT 1', pg, [{ kind: 'cursor', hold: true }]],
    ['DECLARE c CURSOR FOR SELECT 1', pg, [{ kind: 'cursor', hold: false }]],
    ['PREPARE q AS SELECT 1', pg, [{ kind: 'sql_prepare', name: 'q' }]],
    ['EXECUTE q', pg, [{ kind: 'sql_execute', name: 'q' }]],
    ['DEALLOCATE ALL', pg, [{ kind: 'sql_deallocate', name: 'all' }]],
    ['DEALLOCATE PREPARE q', pg, [{ kind: 'sql_deallocate', name: 'q' }]],
    ['LISTEN ch', pg, [{ kind: 'listen' }]],
    ['UNLISTEN ch', pg, [{ kind: 'unlisten' }]],
    ["LOAD 'plugin'", pg, [{ kind: 'load' }]],
    ['SELECT pg_advisory_lock(1)', pg, [{ kind: 'advisory_lock' }]],
    ['SELECT pg_try_advisory_lock_shared(1)', pg, [{ kind: 'advisory_lock' }]],
    ["SELECT set_config('search_path', 'x', false)", pg, [{ kind: 'session_config' }]],
    ["SELECT set_config('search_path', $1, $2)", pg, [{ kind: 'session_config' }]],
    ["SELECT set_config('a.b', lower('X'), true)", pg, [{ kind: 'session_config' }]],
    ['SET @a = 1, sql_mode = \'\', autocommit = 0', my, [
      { kind: 'user_variable' }, { kind: 'set', name: 'sql_mode', local: false, value: "''" }, { kind: 'autocommit', on: false }]],
    ['SET autocommit = 1', my, [{ kind: 'autocommit', on: true }]],
    ['SET @@session.time_zone = \'+00:00\'', my, [{ kind: 'set', name: 'time_zone', local: false, value: "'+00:00'" }]],
    ['SET NAMES utf8mb4', my, [{ kind: 'set_names' }]],
    ['USE `shop`', my, [{ kind: 'use', database: 'shop' }]],
    ['LOCK TABLES t WRITE', my, [{ kind: 'lock_tables' }]],
    ['UNLOCK TABLES', my, [{ kind: 'unlock_tables' }]],
    ["SELECT GET_LOCK('a', 1)", my, [{ kind: 'advisory_lock' }]],
    ['SELECT @v := 1', my, [{ kind: 'user_variable' }]],
    ['SELECT 1 INTO @v', my, [{ kind: 'user_variable' }]],
    ['SELECT SQL_CALC_FOUND_ROWS * FROM t', my, [{ kind: 'calc_found_rows' }]],
    ['SELECT LAST_INSERT_ID()', my, [{ kind: 'last_insert_id' }]],
    ["PREPARE s FROM 'SELECT 1'", my, [{ kind: 'sql_prepare', name: 's' }]],
    ['SET search_path = a; LISTEN x', pg, [{ kind: 'set', name: 'search_path', local: false, value: 'a' }, { kind: 'listen' }]],
  ] as const)('%s', (sql, opts, effects) => {
    expect(classify(sql, opts).session).toEqual(effects);
  });

  it('transaction-level advisory locks leave no session effect', () => {
    const c = classify('SELECT pg_advisory_xact_lock(1)', pg);
    expect(c.class).toBe('write');
    expect(c.session).toBeUndefined();
  });

  it('set_config(..., true) is transaction-local: a write, but no session effect', () => {
    for (const sql of ["SELECT set_config('request.jwt', 'x,true', TRUE)", "SELECT set_config('request.jwt', '{}', true)"]) {
      const c = classify(sql, pg);
      expect(c.class).toBe('write');
      expect(c.session).toBeUndefined();
    }
  });

  it('has no session effects for plain statements', () => {
    expect(classify('SELECT 1', pg).session).toBeUndefined();
    expect(classify('UPDATE t SET a = 1', my).session).toBeUndefined();
  });
});

describe('hints', () => {
  it.each([
    ['/* route=primary */ SELECT 1', pg, { route: 'primary' }],
    ['/* route=replica */ SELECT 1', pg, { route: 'replica' }],
    ['/* max_lag=500ms */ SELECT 1', pg, { maxLagMs: 500 }],
    ['/* route=replica max_lag=2s */ SELECT 1', pg, { route: 'replica', maxLagMs: 2000 }],
    ["/* app='x', route=replica, max_lag=1.5s */ SELECT 1", pg, { route: 'replica', maxLagMs: 1500 }],
    ['/* route=replica */ /* max_lag=250 */ SELECT 1', pg, { route: 'replica', maxLagMs: 250 }],
    ['-- route=primary\nSELECT 1', pg, { route: 'primary' }],
    ['# route=replica\nSELECT 1', my, { route: 'replica' }],
    ['  /* ROUTE=Replica */ SELECT 1', pg, { route: 'replica' }],
    ['/* outer /* route=primary */ */ SELECT 1', pg, { route: 'primary' }],
    ['SELECT 1 /* route=replica */', pg, {}],
    ["SELECT '/* route=replica */'", pg, {}],
    ['/*! route=replica */ SELECT 1', my, {}],
    ['/* route=somewhere max_lag=soon */ SELECT 1', pg, {}],
    ['SELECT 1', pg, {}],
  ] as const)('%s', (sql, opts, hints) => {
    expect(classify(sql, opts).hints).toEqual(hints);
  });

  it('a replica hint never turns a write into a read', () => {
    const c = classify('/* route=replica */ DELETE FROM t', pg);
    expect(c).toMatchObject({ class: 'write', reason: 'dml', hints: { route: 'replica' } });
  });
});

describe('write and read function lists', () => {
  it('writeFunctions adds names, schema-qualified and quoted calls match', () => {
    const opts: ClassifierOptions = { dialect: 'postgres', writeFunctions: ['audit.log_event', 'bump_*'] };
    expect(classify('SELECT log_event(1)', opts).class).toBe('write');
    expect(classify('SELECT audit.LOG_EVENT(1)', opts).class).toBe('write');
    expect(classify('SELECT "log_event"(1)', opts).class).toBe('write');
    expect(classify('SELECT bump_counter(1)', opts).class).toBe('write');
    expect(classify('SELECT log_events(1)', opts).class).toBe('read');
    expect(classify('SELECT log_event FROM t', opts).class).toBe('read');
  });

  it('unknown user functions are reads unless listed', () => {
    expect(classify('SELECT my_func(1)', pg).class).toBe('read');
  });

  it('readFunctions removes names from the write list, also under a default prefix', () => {
    const opts: ClassifierOptions = { dialect: 'postgres', readFunctions: ['currval', 'pg_advisory_unlock'] };
    expect(classify("SELECT currval('s')", opts).class).toBe('read');
    expect(classify('SELECT pg_advisory_unlock(1)', opts).class).toBe('read');
    expect(classify('SELECT pg_advisory_lock(1)', opts).class).toBe('write');
  });

  it('the dialects have their own lists', () => {
    expect(classify("SELECT GET_LOCK('a', 1)", pg).class).toBe('read');
    expect(classify("SELECT set_config('a', 'b', false)", my).class).toBe('read');
  });
});

describe('explain()', () => {
  it('reports each statement with its text', () => {
    const e = explain('SELECT 1; /* x */ DELETE FROM t ;; BEGIN READ ONLY', pg);
    expect(e).toMatchObject({ class: 'write', reason: 'multi_statement', statements: 3 });
    expect(e.details.map((d) => [d.text, d.class, d.reason])).toEqual([
      ['SELECT 1', 'read', 'read'],
      ['DELETE FROM t', 'write', 'dml'],
      ['BEGIN READ ONLY', 'read', 'transaction'],
    ]);
  });
});

describe('statement counting', () => {
  it.each([
    ['', 0], [';;', 0], ['SELECT 1', 1], ['SELECT 1;', 1], ['SELECT 1;;SELECT 2', 2], ["SELECT ';'; SELECT 2", 2],
    ['CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END; SELECT 1', 2],
  ] as const)('%j has %d', (sql, n) => {
    expect(classify(sql, pg).statements).toBe(n);
  });

  it('MySQL routine bodies keep their semicolons', () => {
    const sql = 'CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT 1; END IF; WHILE 0 DO SELECT 2; END WHILE; END; SELECT 3';
    expect(classify(sql, my).statements).toBe(2);
  });
});
