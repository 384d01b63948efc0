import { describe, expect, it } from 'vitest';
import { Classifier } from '../../../src/sql/index.js';
import { SessionSettings, effectVerdict, routingClass, touchPrepared, type ConnState } from '../../../src/frontend/pg/session-state.js';
import { classifySegment } from '../../../src/frontend/pg/translate.js';
import { msg, PgFrameReader } from '../../../src/protocol/pg/index.js';

const classifier = new Classifier({ dialect: 'postgres' });

describe('effectVerdict', () => {
  const rows: [string, boolean, 'none' | 'record' | 'pin'][] = [
    ['SELECT 1', false, 'none'],
    ["SET search_path TO a, b", false, 'record'],
    ["SET statement_timeout = '5s'", false, 'record'],
    ["SET search_path TO a", true, 'pin'],
    ['SET LOCAL work_mem = 1024', true, 'none'],
    ['RESET search_path', false, 'record'],
    ['RESET ALL', false, 'record'],
    ['DISCARD ALL', false, 'record'],
    ['SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY', false, 'pin'],
    ['SET ROLE someone', false, 'pin'],
    ['SET SESSION AUTHORIZATION someone', false, 'pin'],
    ['CREATE TEMP TABLE t (x int)', false, 'pin'],
    ['LISTEN chan', false, 'pin'],
    ['SELECT pg_advisory_lock(1)', false, 'pin'],
    ['PREPARE p AS SELECT 1', false, 'pin'],
    ['DECLARE c CURSOR WITH HOLD FOR SELECT 1', false, 'pin'],
    ["LOAD 'auto_explain'", false, 'pin'],
    ['EXECUTE p', false, 'pin'],
    // The session answers DEALLOCATE of its protocol-level statements; an SQL-level one is already pinned.
    ['DEALLOCATE s1', false, 'none'],
    ['DEALLOCATE PREPARE s1', true, 'none'],
    ['DEALLOCATE ALL', false, 'none'],
  ];
  it.each(rows)('%s (in transaction: %s) -> %s', (sql, inTx, want) => {
    expect(effectVerdict(classifier.classify(sql), inTx)).toBe(want);
  });
});

describe('routingClass (read/write listener: a read whose effect pins goes to the primary)', () => {
  const rows: [string, 'rw' | 'ro', 'I' | 'T', 'read' | 'write'][] = [
    ['SELECT 1', 'rw', 'I', 'read'],
    ['DECLARE c CURSOR WITH HOLD FOR SELECT 1', 'rw', 'I', 'write'],
    ['DECLARE c CURSOR FOR SELECT 1', 'rw', 'T', 'read'],
    ['PREPARE q AS SELECT 1', 'rw', 'I', 'write'],
    ['PREPARE q AS SELECT 1', 'ro', 'I', 'read'],
    ['DECLARE c CURSOR WITH HOLD FOR SELECT 1', 'ro', 'I', 'read'],
    ["SELECT set_config('a.b', '1', false)", 'rw', 'I', 'write'],
  ];
  it.each(rows)('%s on %s (status %s) -> %s', (sql, listener, tx, want) => {
    expect(routingClass(classifier.classify(sql), listener, tx).class).toBe(want);
  });
});

describe('DEALLOCATE names', () => {
  const rows: [string, string][] = [
    ['DEALLOCATE s1', 's1'],
    ['DEALLOCATE S1', 's1'],
    ['DEALLOCATE "S_1"', 'S_1'],
    ['DEALLOCATE PREPARE "a""b"', 'a"b'],
    ['deallocate prepare a1;', 'a1'],
    ['/* app */ DEALLOCATE ALL', 'all'],
    ['DEALLOCATE PREPARE ALL', 'all'],
  ];
  it.each(rows)('%s -> %s', (sql, name) => {
    const c = classifier.classify(sql);
    expect(c.statements).toBe(1);
    expect(c.session).toEqual([{ kind: 'sql_deallocate', name }]);
  });
  it('MySQL names stay folded (they are case-insensitive)', () => {
    expect(new Classifier({ dialect: 'mysql' }).classify('DEALLOCATE PREPARE `S1`').session).toEqual([{ kind: 'sql_deallocate', name: 's1' }]);
  });
});

describe('SessionSettings', () => {
  it('keeps the last value per name, forgets on RESET/DEFAULT, and replays from a clean slate', () => {
    const s = new SessionSettings();
    expect(s.key).toBe('');
    s.apply(classifier.classify("SET search_path TO a, \"B c\"").session);
    s.apply(classifier.classify("SET statement_timeout = '5s'").session);
    s.apply(classifier.classify('SET TIME ZONE \'UTC\'').session);
    s.apply(classifier.classify('SET myapp.tenant = 42').session);
    expect(s.replaySql()).toBe('RESET ALL; SET "search_path" = a, "B c"; SET "statement_timeout" = \'5s\'; SET TIME ZONE \'UTC\'; SET "myapp"."tenant" = 42');
    const k1 = s.key;
    s.apply(classifier.classify('SET statement_timeout = DEFAULT').session);
    s.apply(classifier.classify('RESET search_path').session);
    expect(s.key).not.toBe(k1);
    expect(s.replaySql()).toBe('RESET ALL; SET TIME ZONE \'UTC\'; SET "myapp"."tenant" = 42');
    s.apply(classifier.classify('RESET ALL').session);
    expect(s.key).toBe('');
  });
});

describe('touchPrepared (per-connection LRU)', () => {
  it('evicts the least recently used beyond capacity, never the one touched', () => {
    const st: ConnState = { settingsKey: '', prepared: new Map() };
    expect(touchPrepared(st, 'a', 2)).toEqual([]);
    expect(touchPrepared(st, 'b', 2)).toEqual([]);
    expect(touchPrepared(st, 'a', 2)).toEqual([]); // a is now the newest
    expect(touchPrepared(st, 'c', 2)).toEqual(['b']);
    expect([...st.prepared.keys()]).toEqual(['a', 'c']);
  });
});

describe('classifySegment', () => {
  const frames = (...bufs: Buffer[]) => new PgFrameReader({ maxMessageSize: 1 << 20 }).push(Buffer.concat(bufs));
  const owner = () => ({ statements: new Map(), unnamedClassification: null });
  const rows: [string, Buffer[], 'read' | 'write'][] = [
    ['one read', [msg.parse('', 'SELECT 1'), msg.bind('', '', []), msg.execute(''), msg.sync()], 'read'],
    ['read then write in one pipeline', [msg.parse('', 'SELECT 1'), msg.bind('', '', []), msg.execute(''), msg.parse('', 'DELETE FROM t'), msg.bind('', '', []), msg.execute(''), msg.sync()], 'write'],
    ['named read statement bound', [msg.parse('s1', 'SELECT 2'), msg.bind('', 's1', []), msg.execute(''), msg.sync()], 'read'],
    ['bind of a statement unknown to the session', [msg.bind('', 'nope', []), msg.execute(''), msg.sync()], 'write'],
    ['execute of a portal bound earlier', [msg.execute('p1'), msg.sync()], 'write'],
    ['describe only', [msg.describe('S', 's1'), msg.sync()], 'read'],
  ];
  it.each(rows)('%s', (_n, bufs, want) => {
    expect(classifySegment(owner(), frames(...bufs), classifier, false).class).toBe(want);
  });
  it('after a Flush, an Execute of a portal bound earlier in the batch adds nothing', () => {
    expect(classifySegment(owner(), frames(msg.execute('', 10), msg.flush()), classifier, false, true)).toMatchObject({ class: 'read', reason: 'empty' });
    expect(classifySegment(owner(), frames(msg.execute('', 10), msg.flush()), classifier, false).class).toBe('write');
  });
  it('an incomplete batch is unsure', () => {
    expect(classifySegment(owner(), frames(msg.parse('', 'SELECT 1')), classifier, true).class).toBe('write');
  });
});
