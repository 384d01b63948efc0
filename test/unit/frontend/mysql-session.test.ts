import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Classifier } from '../../../src/sql/index.js';
import { MysqlSessionState, dependsOnPrevious, loginNames, mysqlEffectVerdict, stateKey, type ConnSettings } from '../../../src/frontend/mysql/session-state.js';
import { parsePrepareOk, rewriteExecute, statementKey, withStatementId, type ClientStatement } from '../../../src/frontend/mysql/statements.js';
import { reseq } from '../../../src/frontend/mysql/sink.js';
import { EOF_HEADER, MysqlPacketReader, MysqlResponseScanner, Status, buildEof, buildErr, buildOk, framePacket } from '../../../src/protocol/mysql/index.js';
import { isSwitchyardError } from '../../../src/errors.js';

const classifier = new Classifier({ dialect: 'mysql' });
const c = (sql: string) => classifier.classify(sql);

describe('mysqlEffectVerdict', () => {
  it.each([
    ['SET @a = 1', 'pin'],
    ['CREATE TEMPORARY TABLE t (a INT)', 'pin'],
    ["SELECT GET_LOCK('x', 1)", 'pin'],
    ['LOCK TABLES t READ', 'pin'],
    ['SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1', 'pin'],
    ["PREPARE s FROM 'SELECT 1'", 'pin'],
    ['SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED', 'pin'],
    ["SET sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')", 'pin'],
    ['SET NAMES utf8mb4; SELECT 1', 'pin'],
    ["SET SESSION time_zone = '+00:00'", 'record'],
    ['SET NAMES latin1', 'record'],
    ['USE app2', 'record'],
    ['SELECT 1', 'none'],
    ['INSERT INTO t VALUES (1)', 'none'],
    ['SET autocommit = 0', 'none'],
  ])('%s -> %s', (sql, verdict) => {
    expect(mysqlEffectVerdict(c(sql))).toBe(verdict);
  });
});

describe('dependsOnPrevious', () => {
  it.each([
    ['SELECT LAST_INSERT_ID()', true],
    ['SELECT FOUND_ROWS()', true],
    ['select found_rows ( ) AS n', true],
    // It makes the count itself: routed afresh (to the primary, where it pins), not to a kept connection.
    ['SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1', false],
    ['SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1; SELECT FOUND_ROWS()', false],
    ['SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1; SELECT ROW_COUNT()', true],
    ['SELECT ROW_COUNT()', true],
    ['SHOW WARNINGS', true],
    ['show count(*) errors', true],
    ['SELECT @@warning_count', true],
    ['SELECT 1', false],
    ['SELECT row_counter FROM t', false],
  ])('%s -> %s', (sql, dep) => {
    expect(dependsOnPrevious(c(sql), sql)).toBe(dep);
  });
});

describe('MysqlSessionState', () => {
  const conn = (): ConnSettings => ({ db: null, settings: new Map(), names: null });

  it('replays only what differs, resets what the connection has beyond the session, and then matches', () => {
    const s = new MysqlSessionState('app');
    s.apply(c("SET SESSION time_zone = '+05:00', sql_mode = 'ANSI'").session, null);
    s.apply(c('SET NAMES latin1').session, 'SET NAMES latin1');
    const other = conn();
    other.settings.set('wait_timeout', '10');
    other.settings.set('time_zone', "'+01:00'");
    expect(s.replayFor(other, 224)).toEqual(['SET NAMES latin1', "SET SESSION `wait_timeout` = DEFAULT, `time_zone` = '+05:00', `sql_mode` = 'ANSI'"]);
    s.copyTo(other);
    expect(s.replayFor(other, 224)).toBeNull();
    expect(stateKey(other)).toBe(s.key);
    expect(other.db).toBe('app');
  });

  it('undoes SET NAMES with the login collation, or says it cannot', () => {
    const s = new MysqlSessionState(null);
    const dirty = { ...conn(), names: 'SET NAMES latin1' };
    expect(s.replayFor(dirty, 45)).toEqual([loginNames(45)]);
    expect(s.replayFor(dirty, 9999)).toBeUndefined();
  });

  it('forgets a variable set to DEFAULT, and everything at reset (the database stays)', () => {
    const s = new MysqlSessionState('app');
    s.apply(c("SET time_zone = '+02:00'").session, null);
    s.apply(c('SET time_zone = DEFAULT').session, null);
    expect(s.key).toBe('');
    s.apply(c("SET sql_mode = 'ANSI'").session, null);
    s.apply(c('USE other').session, 'USE other');
    s.reset();
    expect(s.key).toBe('');
    expect(s.db).toBe('other');
  });
});

describe('prepared statement rewriting', () => {
  const stmt = (params: number): ClientStatement => ({ id: 1, sql: 'x', classification: c('SELECT 1'), params, columns: 0, types: null, longData: [] });
  /** COM_STMT_EXECUTE for `params` parameters; types when `bound`. */
  const execute = (id: number, params: number, bound: boolean, values: Buffer) => {
    const head = Buffer.alloc(10);
    head[0] = 0x17;
    head.writeUInt32LE(id, 1);
    head.writeUInt32LE(1, 6);
    const nullmap = Buffer.alloc((params + 7) >> 3);
    const types = Buffer.alloc(2 * params, 0x08);
    return Buffer.concat([head, nullmap, Buffer.from([bound ? 1 : 0]), bound ? types : Buffer.alloc(0), values]);
  };

  it('puts the server id in place of the client id and records the parameter types', () => {
    const s = stmt(2);
    const out = rewriteExecute(execute(7, 2, true, Buffer.from('vals')), s, { id: 99, params: 2, columns: 0 });
    expect(out.readUInt32LE(1)).toBe(99);
    expect(s.types).toEqual(Buffer.alloc(4, 0x08));
  });

  it('puts the types back when an execute omits them (the server statement may have another session\'s)', () => {
    const s = stmt(2);
    rewriteExecute(execute(7, 2, true, Buffer.from('a')), s, { id: 5, params: 2, columns: 0 });
    const out = rewriteExecute(execute(7, 2, false, Buffer.from('b')), s, { id: 6, params: 2, columns: 0 });
    expect(out).toEqual((() => {
      const e = execute(6, 2, true, Buffer.from('b'));
      return e;
    })());
  });

  it('refuses truncated executes with a SwitchyardError only (fuzzed)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: 0, max: 20 }), (bytes, params) => {
        try {
          rewriteExecute(Buffer.concat([Buffer.from([0x17, 1, 0, 0, 0]), Buffer.from(bytes)]), stmt(params), { id: 1, params, columns: 0 });
        } catch (e) {
          expect(isSwitchyardError(e) || e instanceof RangeError).toBe(true);
        }
      }),
    );
  });

  it('parses COM_STMT_PREPARE_OK and rewrites its id in a copy', () => {
    const ok = Buffer.from([0, 42, 0, 0, 0, 3, 0, 2, 0, 0, 0, 0]);
    expect(parsePrepareOk(ok)).toEqual({ id: 42, columns: 3, params: 2 });
    const raw = framePacket(ok, 1).bytes;
    const copy = withStatementId(raw, 7);
    expect(copy.readUInt32LE(5)).toBe(7);
    expect(raw.readUInt32LE(5)).toBe(42);
    expect(() => parsePrepareOk(Buffer.from([0xff, 1]))).toThrow();
  });

  it('keys server statements by database and text', () => {
    expect(statementKey('a', 'SELECT 1')).not.toBe(statementKey('b', 'SELECT 1'));
    expect(statementKey(null, 'SELECT 1')).toBe(statementKey(null, 'SELECT 1'));
  });

  it('shifts every physical sequence id of a split packet', () => {
    const payload = Buffer.alloc(0xffffff + 10, 1);
    const framed = framePacket(payload, 1).bytes;
    const shifted = reseq(framed, 2);
    const reader = new MysqlPacketReader({ maxMessageSize: 1 << 26 });
    const [p] = reader.push(shifted);
    expect(p!.seq).toBe(3);
    expect(p!.lastSeq).toBe(4);
    expect(p!.payload.length).toBe(payload.length);
  });
});

describe('scanner response kinds added for the proxy', () => {
  const column = Buffer.concat([Buffer.from([3]), Buffer.from('def'), Buffer.alloc(20, 1)]);
  it('COM_FIELD_LIST: column definitions up to EOF, or up to a 0xfe OK with DEPRECATE_EOF', () => {
    const s = new MysqlResponseScanner(false);
    s.begin('field_list');
    expect(s.next(column).kind).toBe('more');
    expect(s.next(buildEof({ warnings: 0, status: Status.AUTOCOMMIT }))).toEqual({ kind: 'done', status: Status.AUTOCOMMIT, error: false });
    const d = new MysqlResponseScanner(true);
    d.begin('field_list');
    expect(d.next(column).kind).toBe('more');
    expect(d.next(buildOk({ status: Status.AUTOCOMMIT }, EOF_HEADER)).kind).toBe('done');
    d.begin('field_list');
    expect(d.next(buildErr({ errno: 1146, sqlState: '42S02', message: 'no table' }))).toMatchObject({ kind: 'done', error: true });
  });

  it('COM_STATISTICS: one packet', () => {
    const s = new MysqlResponseScanner(false);
    s.begin('single');
    expect(s.next(Buffer.from('Uptime: 5  Threads: 1')).kind).toBe('done');
  });

  it('an execute that opened a cursor ends after the column definitions', () => {
    const s = new MysqlResponseScanner(false);
    s.begin('result');
    expect(s.next(Buffer.from([1])).kind).toBe('more');
    expect(s.next(column).kind).toBe('more');
    expect(s.next(buildEof({ warnings: 0, status: Status.AUTOCOMMIT | Status.CURSOR_EXISTS })).kind).toBe('done');
  });

  it('COM_STMT_FETCH: rows up to EOF', () => {
    const s = new MysqlResponseScanner(false);
    s.begin('rows');
    expect(s.next(Buffer.from([0, 0, 1, 2])).kind).toBe('more');
    expect(s.next(buildEof({ warnings: 0, status: Status.LAST_ROW_SENT }))).toMatchObject({ kind: 'done', status: Status.LAST_ROW_SENT });
  });
});
