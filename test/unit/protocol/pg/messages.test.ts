import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  msg,
  parseAuthRequest,
  parseBackendKeyData,
  parseBindHeader,
  parseCommandComplete,
  parseDescribeOrClose,
  parseErrorOrNotice,
  parseExecute,
  parseParameterStatus,
  parseParse,
  parsePasswordMessage,
  parseQuery,
  parseReadyForQuery,
  parseSASLInitialResponse,
  parseStartupPacket,
} from '../../../../src/protocol/pg/index.js';
import { ErrorCodes, SwitchyardError } from '../../../../src/errors.js';
import { hex, only } from './helpers.js';

const violation = expect.objectContaining({ code: ErrorCodes.PROTOCOL_VIOLATION });

describe('hand-written wire vectors', () => {
  it('ReadyForQuery: Z 00000005 I', () => {
    const wire = hex('5a 00000005 49');
    expect(msg.readyForQuery('I').equals(wire)).toBe(true);
    const f = only(wire);
    expect(f.type).toBe(0x5a);
    expect(parseReadyForQuery(f.payload)).toBe('I');
    expect(parseReadyForQuery(Buffer.from('T'))).toBe('T');
    expect(parseReadyForQuery(Buffer.from('E'))).toBe('E');
  });

  it('SSLRequest, GSSENCRequest, CancelRequest and a 3.0 StartupMessage', () => {
    expect(msg.sslRequest().equals(hex('00000008 04d2162f'))).toBe(true);
    expect(parseStartupPacket(hex('04d2162f'))).toEqual({ kind: 'ssl' });
    expect(parseStartupPacket(hex('04d21630'))).toEqual({ kind: 'gssenc' });
    expect(msg.cancelRequest(0x1234, 0x0a0b0c0d).equals(hex('00000010 04d2162e 00001234 0a0b0c0d'))).toBe(true);
    // user=postgres: length 4 + 4 + "user\0" + "postgres\0" + final NUL = 23.
    const startup = Buffer.concat([hex('00000017 00030000'), Buffer.from('user\0postgres\0\0')]);
    expect(msg.startupMessage({ user: 'postgres' }).equals(startup)).toBe(true);
    expect(parseStartupPacket(only(startup, true).payload)).toEqual({ kind: 'startup', major: 3, minor: 0, params: { user: 'postgres' } });
  });

  it('Query, Sync, Terminate, AuthenticationOk, CommandComplete', () => {
    expect(msg.query('SELECT 1').equals(Buffer.concat([hex('51 0000000d'), Buffer.from('SELECT 1\0')]))).toBe(true);
    expect(msg.sync().equals(hex('53 00000004'))).toBe(true);
    expect(msg.flush().equals(hex('48 00000004'))).toBe(true);
    expect(msg.terminate().equals(hex('58 00000004'))).toBe(true);
    expect(msg.authenticationOk().equals(hex('52 00000008 00000000'))).toBe(true);
    expect(parseCommandComplete(Buffer.from('UPDATE 3\0'))).toBe('UPDATE 3');
  });

  it('AuthenticationMD5Password and AuthenticationSASL as a server sends them', () => {
    expect(parseAuthRequest(hex('00000005 deadbeef'))).toEqual({ type: 'md5', salt: hex('deadbeef') });
    const sasl = Buffer.concat([hex('0000000a'), Buffer.from('SCRAM-SHA-256\0\0')]);
    expect(parseAuthRequest(sasl)).toEqual({ type: 'sasl', mechanisms: ['SCRAM-SHA-256'] });
    expect(parseAuthRequest(hex('00000007'))).toEqual({ type: 'unsupported', code: 7 });
  });

  it('an ErrorResponse as PostgreSQL sends it, with every field kept by code', () => {
    const body = 'SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user "bob"\0Fauth.c\0L326\0Rauth_failed\0\0';
    const e = parseErrorOrNotice(only(Buffer.concat([hex('45'), hex((4 + body.length).toString(16).padStart(8, '0')), Buffer.from(body)])).payload);
    expect(e).toEqual({
      severity: 'FATAL',
      code: '28P01',
      message: 'password authentication failed for user "bob"',
      fields: { S: 'FATAL', V: 'FATAL', C: '28P01', M: 'password authentication failed for user "bob"', F: 'auth.c', L: '326', R: 'auth_failed' },
    });
    // Before 9.6 there is no V field: the localized S is used.
    expect(parseErrorOrNotice(Buffer.from('SFEHLER\0C42601\0Mx\0\0')).severity).toBe('FEHLER');
  });

  it('BackendKeyData and ParameterStatus', () => {
    expect(parseBackendKeyData(hex('00003039 fffffffe'))).toEqual({ pid: 12345, secret: -2 });
    expect(parseParameterStatus(Buffer.from('server_version\x0016.2\0'))).toEqual({ name: 'server_version', value: '16.2' });
  });
});

describe('round trips: builders then parsers', () => {
  it('startup-phase packets', () => {
    // JSON.parse makes __proto__ an own key (an object literal would set the prototype instead).
    const params = JSON.parse('{"user":"u","database":"d","application_name":"ä ✓","__proto__":"kept as a key"}') as Record<string, string>;
    const parsed = parseStartupPacket(only(msg.startupMessage(params), true).payload);
    expect(parsed).toEqual({ kind: 'startup', major: 3, minor: 0, params });
    expect(parsed.kind === 'startup' && Object.keys(parsed.params)).toEqual(['user', 'database', 'application_name', '__proto__']);
    expect(parseStartupPacket(only(msg.cancelRequest(1234, -5), true).payload)).toEqual({ kind: 'cancel', pid: 1234, secret: -5 });
    expect(parseStartupPacket(hex('00030002 00'))).toEqual({ kind: 'startup', major: 3, minor: 2, params: {} });
    expect(parseStartupPacket(hex('00020000'))).toEqual({ kind: 'unsupported', code: 0x20000 });
    expect(parseStartupPacket(hex('04d2ffff'))).toEqual({ kind: 'unsupported', code: 0x04d2ffff });
  });

  it('frontend messages', () => {
    expect(parseQuery(only(msg.query('SELECT 1')).payload)).toBe('SELECT 1');
    expect(parseParse(only(msg.parse('s1', 'SELECT $1', [23, 0xffffffff])).payload)).toEqual({ name: 's1', query: 'SELECT $1', paramTypes: [23, 0xffffffff] });
    expect(parseParse(only(msg.parse('', 'SELECT 1')).payload)).toEqual({ name: '', query: 'SELECT 1', paramTypes: [] });
    expect(parseBindHeader(only(msg.bind('p', 's1', [Buffer.from('x'), null])).payload)).toEqual({ portal: 'p', statement: 's1' });
    expect(parseDescribeOrClose(only(msg.describe('S', 's1')).payload)).toEqual({ kind: 'S', name: 's1' });
    expect(parseDescribeOrClose(only(msg.close('P', '')).payload)).toEqual({ kind: 'P', name: '' });
    expect(parseExecute(only(msg.execute('p', 10)).payload)).toEqual({ portal: 'p', maxRows: 10 });
    expect(parseExecute(only(msg.execute('')).payload)).toEqual({ portal: '', maxRows: 0 });
    expect(parsePasswordMessage(only(msg.passwordMessage('md5abc')).payload)).toBe('md5abc');
    expect(parseSASLInitialResponse(only(msg.saslInitialResponse('SCRAM-SHA-256', 'n,,n=,r=x')).payload)).toEqual({ mechanism: 'SCRAM-SHA-256', data: Buffer.from('n,,n=,r=x') });
    expect(parseSASLInitialResponse(Buffer.concat([Buffer.from('M\0'), hex('ffffffff')]))).toEqual({ mechanism: 'M', data: Buffer.alloc(0) });
    // SASLResponse is raw bytes after the header.
    expect(only(msg.saslResponse('c=biws')).payload.toString()).toBe('c=biws');
  });

  it('the Bind frame carries parameters as length-prefixed bytes, NULL as -1', () => {
    const payload = only(msg.bind('', 'st', [Buffer.from('42'), null])).payload;
    expect(payload.equals(Buffer.concat([Buffer.from('\0st\0'), hex('0000 0002 00000002 3432 ffffffff 0000')]))).toBe(true);
  });

  it('backend messages', () => {
    const e = parseErrorOrNotice(only(msg.errorResponse({ severity: 'FATAL', code: '08P01', message: 'bad', detail: 'd', hint: 'h' })).payload);
    expect(e).toEqual({ severity: 'FATAL', code: '08P01', message: 'bad', detail: 'd', hint: 'h', fields: { S: 'FATAL', V: 'FATAL', C: '08P01', M: 'bad', D: 'd', H: 'h' } });
    const n = only(msg.noticeResponse({ severity: 'WARNING', code: '01000', message: 'careful' }));
    expect(n.type).toBe(0x4e);
    expect(parseErrorOrNotice(n.payload)).toMatchObject({ severity: 'WARNING', code: '01000', message: 'careful' });
    expect(parseParameterStatus(only(msg.parameterStatus('TimeZone', 'UTC')).payload)).toEqual({ name: 'TimeZone', value: 'UTC' });
    expect(parseBackendKeyData(only(msg.backendKeyData(7, -9)).payload)).toEqual({ pid: 7, secret: -9 });
    expect(parseCommandComplete(only(msg.commandComplete('INSERT 0 1')).payload)).toBe('INSERT 0 1');
    expect(parseAuthRequest(only(msg.authenticationOk()).payload)).toEqual({ type: 'ok' });
    expect(parseAuthRequest(only(msg.authenticationCleartextPassword()).payload)).toEqual({ type: 'cleartext' });
    expect(parseAuthRequest(only(msg.authenticationMD5Password(Buffer.from([1, 2, 3, 4]))).payload)).toEqual({ type: 'md5', salt: Buffer.from([1, 2, 3, 4]) });
    expect(parseAuthRequest(only(msg.authenticationSASL(['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS'])).payload)).toEqual({ type: 'sasl', mechanisms: ['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS'] });
    expect(parseAuthRequest(only(msg.authenticationSASLContinue('r=a')).payload)).toEqual({ type: 'sasl-continue', data: Buffer.from('r=a') });
    expect(parseAuthRequest(only(msg.authenticationSASLFinal(Buffer.from('v=b'))).payload)).toEqual({ type: 'sasl-final', data: Buffer.from('v=b') });
  });

  it('bodiless and fixed messages have the documented type bytes', () => {
    const types = [msg.emptyQueryResponse(), msg.parseComplete(), msg.bindComplete(), msg.closeComplete(), msg.noData()].map((b) => {
      expect(b.readInt32BE(1)).toBe(4);
      return String.fromCharCode(b[0]!);
    });
    expect(types.join('')).toBe('I123n');
    expect(msg.sslNo().toString()).toBe('N');
    expect(msg.sslYes().toString()).toBe('S');
    expect(msg.sslNo()).not.toBe(msg.sslNo()); // fresh each time
  });

  it('NegotiateProtocolVersion: newest minor and the unrecognized options', () => {
    const f = only(msg.negotiateProtocolVersion(0, ['_pq_.a', '_pq_.b']));
    expect(f.type).toBe(0x76);
    expect(f.payload.equals(Buffer.concat([hex('00030000 00000002'), Buffer.from('_pq_.a\0_pq_.b\0')]))).toBe(true);
  });

  it('arbitrary strings round-trip (property)', () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !s.includes('\0'));
    fc.assert(
      fc.property(text, text, fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 5 }), fc.integer(), (a, b, oids, n) => {
        expect(parseQuery(only(msg.query(a)).payload)).toBe(a);
        expect(parseParse(only(msg.parse(a, b, oids)).payload)).toEqual({ name: a, query: b, paramTypes: oids });
        expect(parseBindHeader(only(msg.bind(a, b, [])).payload)).toEqual({ portal: a, statement: b });
        expect(parseExecute(only(msg.execute(a, n | 0)).payload)).toEqual({ portal: a, maxRows: n | 0 });
        expect(parseParameterStatus(only(msg.parameterStatus(a, b)).payload)).toEqual({ name: a, value: b });
      }),
      { numRuns: 200 },
    );
  });

  it('a NUL inside a string is refused instead of corrupting the frame', () => {
    expect(() => msg.query('a\0b')).toThrow(SwitchyardError);
  });
});

describe('malformed payloads', () => {
  it('throw PROTOCOL_VIOLATION', () => {
    const cases: [string, () => unknown][] = [
      ['Query without NUL', () => parseQuery(Buffer.from('no nul'))],
      ['Query with trailing bytes', () => parseQuery(Buffer.from('a\0b'))],
      ['Parse without parameter count', () => parseParse(Buffer.from('a\0b\0'))],
      ['Parse with a negative count', () => parseParse(Buffer.concat([Buffer.from('a\0b\0'), hex('ffff')]))],
      ['Parse with missing OIDs', () => parseParse(Buffer.concat([Buffer.from('a\0b\0'), hex('0002 00000017')]))],
      ['Describe of kind X', () => parseDescribeOrClose(Buffer.from('X\0'))],
      ['Describe empty', () => parseDescribeOrClose(Buffer.alloc(0))],
      ['Execute without row count', () => parseExecute(Buffer.from('p\0'))],
      ['SASLInitialResponse longer than the frame', () => parseSASLInitialResponse(Buffer.concat([Buffer.from('M\0'), hex('00000009 41')]))],
      ['startup without final NUL', () => parseStartupPacket(Buffer.from([0, 3, 0, 0, 0x75]))],
      ['startup with a name but no value', () => parseStartupPacket(Buffer.concat([hex('00030000'), Buffer.from('user\0')]))],
      ['SSLRequest with extra bytes', () => parseStartupPacket(hex('04d2162f 00'))],
      ['CancelRequest with a 3.2-style long key', () => parseStartupPacket(hex('04d2162e 00000001 0000000200000003'))],
      ['ReadyForQuery X', () => parseReadyForQuery(Buffer.from('X'))],
      ['ReadyForQuery too long', () => parseReadyForQuery(Buffer.from('II'))],
      ['BackendKeyData short', () => parseBackendKeyData(hex('000001'))],
      ['Auth empty', () => parseAuthRequest(Buffer.alloc(0))],
      ['MD5 auth without salt', () => parseAuthRequest(hex('00000005 0102'))],
      ['SASL list unterminated', () => parseAuthRequest(Buffer.concat([hex('0000000a'), Buffer.from('SCRAM-SHA-256\0')]))],
    ];
    for (const [name, f] of cases) expect(f, name).toThrow(violation);
  });

  it('never throw anything but SwitchyardError on arbitrary bytes (fuzz)', () => {
    const parsers = [
      parseStartupPacket, parseQuery, parseParse, parseBindHeader, parseDescribeOrClose, parseExecute, parsePasswordMessage,
      parseSASLInitialResponse, parseReadyForQuery, parseErrorOrNotice, parseParameterStatus, parseBackendKeyData, parseAuthRequest, parseCommandComplete,
    ];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 48 }), (bytes) => {
        for (const parse of parsers) {
          try {
            parse(Buffer.from(bytes));
          } catch (e) {
            expect(e).toBeInstanceOf(SwitchyardError);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });
});
