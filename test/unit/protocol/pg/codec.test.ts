import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import {
  PgFrameReader,
  ScramClient,
  ScramServer,
  md5Password,
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
  rewriteBindStatement,
  rewriteDescribeOrCloseName,
  rewriteParseName,
} from '../../../../src/protocol/pg/index.js';
import { SwitchyardError } from '../../../../src/errors.js';

const one = (frame: Buffer, startup = false) => {
  const frames = new PgFrameReader({ maxMessageSize: 1 << 20, startup }).push(frame);
  expect(frames).toHaveLength(1);
  return frames[0]!;
};

describe('message round trips', () => {
  it('startup, SSLRequest, CancelRequest, GSSENCRequest', () => {
    expect(parseStartupPacket(one(msg.startupMessage({ user: 'u', database: 'd', application_name: 'ä' }), true).payload)).toEqual({
      kind: 'startup',
      major: 3,
      minor: 0,
      params: { user: 'u', database: 'd', application_name: 'ä' },
    });
    expect(parseStartupPacket(one(msg.sslRequest(), true).payload)).toEqual({ kind: 'ssl' });
    expect(parseStartupPacket(one(msg.cancelRequest(1234, -5), true).payload)).toEqual({ kind: 'cancel', pid: 1234, secret: -5 });
    const gss = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]);
    expect(parseStartupPacket(one(gss, true).payload)).toEqual({ kind: 'gssenc' });
    expect(parseStartupPacket(Buffer.from([0, 2, 0, 0]))).toEqual({ kind: 'unsupported', code: 0x20000 });
  });

  it('frontend messages', () => {
    expect(parseQuery(one(msg.query('SELECT 1')).payload)).toBe('SELECT 1');
    expect(parseParse(one(msg.parse('s1', 'SELECT $1', [23, 0xffffffff])).payload)).toEqual({ name: 's1', query: 'SELECT $1', paramTypes: [23, 0xffffffff] });
    expect(parseBindHeader(one(msg.bind('p', 's1', [Buffer.from('x'), null])).payload)).toEqual({ portal: 'p', statement: 's1' });
    expect(parseDescribeOrClose(one(msg.describe('S', 's1')).payload)).toEqual({ kind: 'S', name: 's1' });
    expect(parseDescribeOrClose(one(msg.close('P', '')).payload)).toEqual({ kind: 'P', name: '' });
    expect(parseExecute(one(msg.execute('p', 10)).payload)).toEqual({ portal: 'p', maxRows: 10 });
    expect(parsePasswordMessage(one(msg.passwordMessage('md5abc')).payload)).toBe('md5abc');
    expect(parseSASLInitialResponse(one(msg.saslInitialResponse('SCRAM-SHA-256', 'n,,n=,r=x')).payload)).toEqual({
      mechanism: 'SCRAM-SHA-256',
      data: Buffer.from('n,,n=,r=x'),
    });
  });

  it('backend messages', () => {
    expect(parseReadyForQuery(one(msg.readyForQuery('T')).payload)).toBe('T');
    // A real ReadyForQuery on the wire: 'Z' 00000005 'I'.
    expect(one(Buffer.from([0x5a, 0, 0, 0, 5, 0x49])).type).toBe(0x5a);
    expect(parseReadyForQuery(Buffer.from('I'))).toBe('I');
    const e = parseErrorOrNotice(one(msg.errorResponse({ severity: 'FATAL', code: '08P01', message: 'bad', detail: 'd', hint: 'h' })).payload);
    expect(e).toMatchObject({ severity: 'FATAL', code: '08P01', message: 'bad', detail: 'd', hint: 'h' });
    expect(parseParameterStatus(one(msg.parameterStatus('TimeZone', 'UTC')).payload)).toEqual({ name: 'TimeZone', value: 'UTC' });
    expect(parseBackendKeyData(one(msg.backendKeyData(7, -9)).payload)).toEqual({ pid: 7, secret: -9 });
    expect(parseCommandComplete(one(msg.commandComplete('INSERT 0 1')).payload)).toBe('INSERT 0 1');
    expect(parseAuthRequest(one(msg.authenticationOk()).payload)).toEqual({ type: 'ok' });
    expect(parseAuthRequest(one(msg.authenticationMD5Password(Buffer.from([1, 2, 3, 4]))).payload)).toEqual({ type: 'md5', salt: Buffer.from([1, 2, 3, 4]) });
    expect(parseAuthRequest(one(msg.authenticationSASL(['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS'])).payload)).toEqual({ type: 'sasl', mechanisms: ['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS'] });
    expect(parseAuthRequest(one(msg.authenticationSASLContinue('r=a')).payload)).toEqual({ type: 'sasl-continue', data: Buffer.from('r=a') });
    expect(parseAuthRequest(one(msg.authenticationSASLFinal('v=b')).payload)).toEqual({ type: 'sasl-final', data: Buffer.from('v=b') });
    expect(parseAuthRequest(one(msg.authenticationCleartextPassword()).payload)).toEqual({ type: 'cleartext' });
  });

  it('malformed payloads throw PROTOCOL_VIOLATION', () => {
    for (const f of [() => parseQuery(Buffer.from('no nul')), () => parseParse(Buffer.from('a\0b\0')), () => parseDescribeOrClose(Buffer.from('X\0')), () => parseStartupPacket(Buffer.from([0, 3, 0, 0, 0x75]))]) {
      expect(f).toThrow(SwitchyardError);
    }
  });

  it('rewrites statement names without touching the rest', () => {
    const p = rewriteParseName(msg.parse('client_s', 'SELECT $1', [23]), 'sy_1');
    expect(parseParse(one(p).payload)).toEqual({ name: 'sy_1', query: 'SELECT $1', paramTypes: [23] });
    const b = rewriteBindStatement(msg.bind('', 'client_s', [Buffer.from('42')]), 'sy_1');
    expect(b.equals(msg.bind('', 'sy_1', [Buffer.from('42')]))).toBe(true);
    const d = rewriteDescribeOrCloseName(msg.describe('S', 'client_s'), 'sy_22');
    expect(d.equals(msg.describe('S', 'sy_22'))).toBe(true);
  });
});

describe('PgFrameReader', () => {
  const stream = Buffer.concat([msg.query('SELECT 1'), msg.parse('', 'SELECT $1', [23]), msg.bind('', '', [Buffer.from('1')]), msg.execute(''), msg.sync(), msg.query('x'.repeat(3000))]);
  const types = (frames: { type: number }[]) => frames.map((f) => String.fromCharCode(f.type)).join('');

  it('yields the same frames for a stream split at every byte offset', () => {
    const whole = new PgFrameReader({ maxMessageSize: 1 << 20 }).push(stream).map((f) => Buffer.from(f.raw));
    expect(types(new PgFrameReader({ maxMessageSize: 1 << 20 }).push(stream))).toBe('QPBESQ');
    for (let i = 0; i <= stream.length; i++) {
      const r = new PgFrameReader({ maxMessageSize: 1 << 20 });
      const got = [...r.push(stream.subarray(0, i)), ...r.push(stream.subarray(i))];
      expect(got.length).toBe(whole.length);
      // Buffer.equals per frame: a deep toEqual over 3,000 offsets takes seconds.
      got.forEach((f, k) => expect(f.raw.equals(whole[k]!)).toBe(true));
      expect(r.buffered).toBe(0);
    }
  });

  it('yields the same frames from 1-byte chunks', () => {
    const r = new PgFrameReader({ maxMessageSize: 1 << 20 });
    const got: string[] = [];
    for (const byte of stream) for (const f of r.push(Buffer.from([byte]))) got.push(String.fromCharCode(f.type));
    expect(got.join('')).toBe('QPBESQ');
  });

  it('returns views into the chunk (no copy) when a frame lies inside one chunk', () => {
    const frames = new PgFrameReader({ maxMessageSize: 1 << 20 }).push(stream);
    for (const f of frames) {
      expect(f.raw.buffer).toBe(stream.buffer);
      expect(f.payload.buffer).toBe(stream.buffer);
    }
  });

  it('rejects lengths below 4 and above the limit, and stays dead afterwards', () => {
    const r = new PgFrameReader({ maxMessageSize: 100 });
    expect(() => r.push(Buffer.from([0x51, 0, 0, 0, 3]))).toThrow(expect.objectContaining({ code: 'SWITCHYARD_PROTOCOL_VIOLATION' }));
    expect(() => r.push(msg.sync())).toThrow(SwitchyardError);
    const big = new PgFrameReader({ maxMessageSize: 100 });
    expect(() => big.push(Buffer.from([0x51, 0, 0, 1, 0]))).toThrow(expect.objectContaining({ code: 'SWITCHYARD_MESSAGE_TOO_LARGE' }));
    const startup = new PgFrameReader({ maxMessageSize: 100, startup: true });
    expect(() => startup.push(Buffer.from([0, 0, 0, 7]))).toThrow(expect.objectContaining({ code: 'SWITCHYARD_PROTOCOL_VIOLATION' }));
  });

  it('switches from startup framing to typed framing', () => {
    const r = new PgFrameReader({ maxMessageSize: 1 << 20, startup: true });
    const [ssl] = r.push(msg.sslRequest());
    expect(parseStartupPacket(ssl!.payload)).toEqual({ kind: 'ssl' });
    const [st] = r.push(msg.startupMessage({ user: 'a' }));
    expect(parseStartupPacket(st!.payload).kind).toBe('startup');
    r.setStartup(false);
    expect(types(r.push(msg.query('SELECT 1')))).toBe('Q');
  });

  it('never throws anything but SwitchyardError on arbitrary bytes (fuzz)', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }), (startup, chunks) => {
        const r = new PgFrameReader({ maxMessageSize: 4096, startup });
        try {
          for (const c of chunks) r.push(Buffer.from(c));
        } catch (e) {
          expect(e).toBeInstanceOf(SwitchyardError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips random frame sequences through random chunking (property)', () => {
    const frameArb = fc.tuple(fc.constantFrom('Q', 'P', 'B', 'd', 'S'), fc.uint8Array({ maxLength: 200 })).map(([t, body]) => {
      const f = Buffer.alloc(5 + body.length);
      f.write(t, 0, 'latin1');
      f.writeInt32BE(4 + body.length, 1);
      Buffer.from(body).copy(f, 5);
      return f;
    });
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 15 }), fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 10 }), (frames, cuts) => {
        const bytes = Buffer.concat(frames);
        const r = new PgFrameReader({ maxMessageSize: 1 << 20 });
        const out: Buffer[] = [];
        let pos = 0;
        for (let i = 0; pos < bytes.length; i++) {
          const n = cuts[i % cuts.length]!;
          for (const f of r.push(bytes.subarray(pos, pos + n))) out.push(Buffer.from(f.raw));
          pos += n;
        }
        expect(out).toEqual(frames);
      }),
      { numRuns: 500 },
    );
  });
});

describe('password authentication', () => {
  it('md5Password matches the documented formula and a literal vector', () => {
    const salt = Buffer.from([1, 2, 3, 4]);
    const inner = createHash('md5').update('postgrespostgres').digest('hex');
    const want = 'md5' + createHash('md5').update(inner).update(salt).digest('hex');
    expect(md5Password('postgres', 'postgres', salt)).toBe(want);
    // md5('postgres' + 'postgres') is a well-known value.
    expect(inner).toBe('3175bce1d3201d16594cebf9d7eb3f9d');
  });

  it('ScramClient matches RFC 7677 test vector', () => {
    const client = new ScramClient('user', 'pencil', 'rOprNGfwEbeRWgbNEkqO');
    expect(client.clientFirstMessage()).toBe('n,,n=,r=rOprNGfwEbeRWgbNEkqO');
    // The RFC's exchange uses n=user in client-first-bare; recompute with our empty user name
    // against our own server, and check the RFC's proof with the RFC's bare message separately.
    const rfc = new ScramClient('user', 'pencil', 'rOprNGfwEbeRWgbNEkqO');
    (rfc as unknown as { clientFirstBare: string }).clientFirstBare = 'n=user,r=rOprNGfwEbeRWgbNEkqO';
    const final = rfc.handleServerFirst('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096');
    expect(final).toBe('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
    expect(() => rfc.verifyServerFinal('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')).not.toThrow();
    expect(() => rfc.verifyServerFinal('v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')).toThrow(SwitchyardError);
  });

  it('ScramClient and ScramServer agree on the right password and not on a wrong one', () => {
    for (const [clientPw, ok] of [
      ['s3cret', true],
      ['wrong', false],
    ] as const) {
      const server = new ScramServer('s3cret');
      const client = new ScramClient('app', clientPw);
      const serverFirst = server.handleClientFirst(client.clientFirstMessage());
      const result = server.handleClientFinal(client.handleServerFirst(serverFirst));
      expect(result.ok).toBe(ok);
      if (ok) expect(() => client.verifyServerFinal(result.serverFinal!)).not.toThrow();
    }
  });

  it('ScramServer refuses channel binding and malformed messages', () => {
    expect(() => new ScramServer('x').handleClientFirst('p=tls-server-end-point,,n=,r=abc')).toThrow(SwitchyardError);
    expect(() => new ScramServer('x').handleClientFirst('garbage')).toThrow(SwitchyardError);
    const s = new ScramServer('x');
    s.handleClientFirst('n,,n=,r=abc');
    expect(() => s.handleClientFinal('c=biws,r=WRONGNONCE,p=AAAA')).toThrow(SwitchyardError);
  });
});
