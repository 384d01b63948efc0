import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  Cap, MAX_PACKET_PAYLOAD, MysqlPacketReader, MysqlResponseScanner, PayloadReader, Status,
  buildAuthSwitch, buildEndOfRows, buildEof, buildErr, buildHandshakeResponse, buildHandshakeV10, buildOk,
  cachingSha2Token, framePacket, isSslRequest, lenencBytes, lenencInt, makeNonce, nativePasswordToken,
  parseAuthSwitch, parseErr, parseHandshakeResponse, parseHandshakeV10, parseOk, verifyToken,
  type MysqlPacket,
} from '../../../../src/protocol/mysql/index.js';
import { SwitchyardError } from '../../../../src/errors.js';

const MAX = 64 << 20;
const pkt = (payload: Buffer | string, seq: number) => framePacket(Buffer.from(payload), seq).bytes;
const stream = Buffer.concat([pkt('\x03SELECT 1', 0), pkt('', 1), pkt('x'.repeat(3000), 2), pkt('\x0e', 0)]);

describe('MysqlPacketReader', () => {
  const whole = new MysqlPacketReader({ maxMessageSize: MAX }).push(stream);

  it('frames a stream into packets with payload = raw minus the 4-byte header, as views', () => {
    expect(whole.map((p) => [p.seq, p.payload.length])).toEqual([[0, 9], [1, 0], [2, 3000], [0, 1]]);
    expect(Buffer.concat(whole.map((p) => p.raw)).equals(stream)).toBe(true);
    expect(whole[0]!.raw.buffer).toBe(stream.buffer); // zero-copy
  });

  it('yields the same packets for a stream split at every byte offset (and into 1-byte chunks)', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const r = new MysqlPacketReader({ maxMessageSize: MAX });
      const got = [...r.push(stream.subarray(0, cut)), ...r.push(stream.subarray(cut))];
      expect(got.map((p) => p.raw.toString('hex'))).toEqual(whole.map((p) => p.raw.toString('hex')));
      expect(r.buffered).toBe(0);
    }
    const r = new MysqlPacketReader({ maxMessageSize: MAX });
    const got: MysqlPacket[] = [];
    for (let i = 0; i < stream.length; i++) got.push(...r.push(stream.subarray(i, i + 1)));
    expect(got.map((p) => p.payload.toString('hex'))).toEqual(whole.map((p) => p.payload.toString('hex')));
  });

  it('produces and reassembles 16MB split packets, including an exact multiple with an empty terminator', () => {
    for (const size of [MAX_PACKET_PAYLOAD - 1, MAX_PACKET_PAYLOAD, MAX_PACKET_PAYLOAD + 5]) {
      const payload = Buffer.alloc(size, 0x61);
      payload[size - 1] = 0x62;
      const { bytes, nextSeq } = framePacket(payload, 3);
      const pieces = size < MAX_PACKET_PAYLOAD ? 1 : 2;
      expect(nextSeq).toBe(3 + pieces);
      expect(bytes.length).toBe(size + 4 * pieces);
      const r = new MysqlPacketReader({ maxMessageSize: MAX });
      const got: MysqlPacket[] = [];
      for (let i = 0; i < bytes.length; i += 65536) got.push(...r.push(bytes.subarray(i, i + 65536)));
      expect(got).toHaveLength(1);
      expect(got[0]!.seq).toBe(3);
      expect(got[0]!.lastSeq).toBe(3 + pieces - 1);
      expect(got[0]!.payload.equals(payload)).toBe(true);
      expect(got[0]!.raw.equals(bytes)).toBe(true);
    }
  });

  it('rejects split packets out of sequence and oversized packets, and stays dead after', () => {
    const bad = Buffer.concat([framePacket(Buffer.alloc(MAX_PACKET_PAYLOAD), 0).bytes.subarray(0, MAX_PACKET_PAYLOAD + 4), pkt('', 7)]);
    const r = new MysqlPacketReader({ maxMessageSize: MAX });
    expect(() => r.push(bad)).toThrow(/sequence/);
    expect(() => r.push(pkt('x', 0))).toThrow(/sequence/);
    const small = new MysqlPacketReader({ maxMessageSize: 100 });
    expect(() => small.push(Buffer.from([200, 0, 0, 0]))).toThrow(expect.objectContaining({ code: 'SWITCHYARD_MESSAGE_TOO_LARGE' }));
  });

  it('never throws anything but a SwitchyardError on random bytes', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
      const r = new MysqlPacketReader({ maxMessageSize: 1 << 16 });
      try {
        for (const c of chunks) r.push(Buffer.from(c));
      } catch (e) {
        expect(e).toBeInstanceOf(SwitchyardError);
      }
    }));
  });
});

describe('lenenc', () => {
  it('round-trips integers at every width boundary and random ones', () => {
    for (const n of [0, 250, 251, 0xffff, 0x10000, 0xffffff, 0x1000000, Number.MAX_SAFE_INTEGER]) {
      expect(new PayloadReader(lenencInt(n)).lenenc()).toBe(n);
    }
    fc.assert(fc.property(fc.nat({ max: Number.MAX_SAFE_INTEGER }), (n) => {
      const r = new PayloadReader(lenencInt(n));
      expect(r.lenenc()).toBe(n);
      expect(r.remaining).toBe(0);
    }));
    expect(lenencInt(250)).toHaveLength(1);
    expect(lenencInt(251)).toHaveLength(3);
  });

  it('decoders throw only SwitchyardError on random payloads', () => {
    const decoders = [
      (b: Buffer) => new PayloadReader(b).lenencBytes(), parseOk, parseErr, parseHandshakeV10,
      parseHandshakeResponse, parseAuthSwitch,
    ];
    fc.assert(fc.property(fc.uint8Array({ maxLength: 128 }), (bytes) => {
      for (const d of decoders) {
        try {
          d(Buffer.from(bytes));
        } catch (e) {
          expect(e).toBeInstanceOf(SwitchyardError);
        }
      }
    }), { numRuns: 2000 });
  });

  it('lenencBytes prefixes the length', () => {
    expect(new PayloadReader(lenencBytes('héllo')).lenencBytes().toString()).toBe('héllo');
  });
});

describe('OK / ERR / EOF', () => {
  it('round-trip with status flags', () => {
    const ok = parseOk(buildOk({ affectedRows: 70000, lastInsertId: 5, status: Status.IN_TRANS | Status.AUTOCOMMIT, warnings: 2 }));
    expect(ok).toMatchObject({ affectedRows: 70000, lastInsertId: 5, status: 3, warnings: 2 });
    expect(parseErr(buildErr({ errno: 1045, sqlState: '28000', message: 'Access denied' }))).toEqual({ errno: 1045, sqlState: '28000', message: 'Access denied' });
    expect(buildEof({ warnings: 0, status: 2 })).toEqual(Buffer.from([0xfe, 0, 0, 2, 0]));
    expect(buildEndOfRows(2, Cap.DEPRECATE_EOF)[0]).toBe(0xfe);
    expect(buildEndOfRows(2, Cap.DEPRECATE_EOF).length).toBeGreaterThanOrEqual(7);
  });
});

describe('handshake', () => {
  it('Handshake v10 round-trips', () => {
    const h = { serverVersion: '5.5.5-10.11.6-switchyard', connectionId: 4000000001, nonce: makeNonce(), capabilities: (Cap.PROTOCOL_41 | Cap.SECURE_CONNECTION | Cap.PLUGIN_AUTH | Cap.DEPRECATE_EOF) >>> 0, charset: 45, status: Status.AUTOCOMMIT, authPlugin: 'mysql_native_password' };
    expect(parseHandshakeV10(buildHandshakeV10(h))).toEqual(h);
    expect(h.nonce.includes(0)).toBe(false);
  });

  it('HandshakeResponse41 round-trips with every optional part, and without', () => {
    const full = { capabilities: (Cap.PROTOCOL_41 | Cap.SECURE_CONNECTION | Cap.PLUGIN_AUTH | Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA | Cap.CONNECT_WITH_DB | Cap.CONNECT_ATTRS) >>> 0, maxPacketSize: 1 << 24, charset: 45, user: 'app', authResponse: Buffer.alloc(20, 7), database: 'db1', authPlugin: 'caching_sha2_password', attrs: lenencBytes('_client_name') };
    expect(parseHandshakeResponse(buildHandshakeResponse(full))).toEqual(full);
    const bare = { ...full, capabilities: Cap.PROTOCOL_41 | Cap.SECURE_CONNECTION, database: null, authPlugin: null, attrs: null };
    expect(parseHandshakeResponse(buildHandshakeResponse(bare))).toEqual(bare);
    expect(isSslRequest(buildHandshakeResponse(full).subarray(0, 32))).toBe(false);
    expect(isSslRequest(buildHandshakeResponse({ ...full, capabilities: full.capabilities | Cap.SSL }).subarray(0, 32))).toBe(true);
  });

  it('AuthSwitchRequest round-trips', () => {
    const n = makeNonce();
    expect(parseAuthSwitch(buildAuthSwitch('mysql_native_password', n))).toMatchObject({ plugin: 'mysql_native_password', data: n });
  });

  it('AuthSwitchRequest keeps the raw data too (an ed25519 nonce may end in a 0 byte)', () => {
    const nonce = Buffer.alloc(32, 7);
    nonce[31] = 0;
    const payload = Buffer.concat([Buffer.from([0xfe]), Buffer.from('client_ed25519\0'), nonce]);
    const sw = parseAuthSwitch(payload);
    expect(sw.rawData).toEqual(nonce);
    expect(sw.data).toHaveLength(31);
  });
});

describe('auth scrambles', () => {
  const sha1 = (b: Buffer) => createHash('sha1').update(b).digest();
  it('mysql_native_password token passes the server-side check against SHA1(SHA1(pw))', () => {
    const nonce = makeNonce();
    const stored = sha1(sha1(Buffer.from('s3cret')));
    const token = nativePasswordToken('s3cret', nonce);
    const x = sha1(Buffer.concat([nonce, stored]));
    const candidate = Buffer.from(token.map((b, i) => b ^ x[i]!));
    expect(sha1(candidate).equals(stored)).toBe(true);
    expect(verifyToken(nativePasswordToken('s3cret', nonce), token)).toBe(true);
    expect(verifyToken(nativePasswordToken('wrong', nonce), token)).toBe(false);
    expect(nativePasswordToken('', nonce)).toHaveLength(0);
  });
  it('caching_sha2_password token is 32 bytes and depends on the nonce', () => {
    const a = cachingSha2Token('pw', makeNonce());
    expect(a).toHaveLength(32);
    expect(a.equals(cachingSha2Token('pw', makeNonce()))).toBe(false);
  });
});

describe('MysqlResponseScanner', () => {
  const col = Buffer.from('\x03def\x00\x00\x00\x01a\x00\x0c\x3f\x00\x0b\x00\x00\x00\x03\x00\x00\x00\x00\x00', 'latin1');
  const row = Buffer.from('\x011', 'latin1');
  const walk = (s: MysqlResponseScanner, packets: Buffer[]) => packets.map((p) => s.next(p).kind);

  it('text resultset with classic EOFs', () => {
    const s = new MysqlResponseScanner(false);
    s.begin();
    expect(walk(s, [Buffer.from([1]), col, buildEof({ warnings: 0, status: 2 }), row, row, buildEof({ warnings: 0, status: Status.IN_TRANS })])).toEqual(['more', 'more', 'more', 'more', 'more', 'done']);
    expect(s.lastStatus).toBe(Status.IN_TRANS);
    expect(s.idle).toBe(true);
  });

  it('text resultset with DEPRECATE_EOF, multi-results ending in an OK', () => {
    const s = new MysqlResponseScanner(true);
    s.begin();
    const more = Status.AUTOCOMMIT | Status.MORE_RESULTS_EXISTS;
    expect(walk(s, [Buffer.from([1]), col, row, buildOk({ status: more }, 0xfe), buildOk({ status: more }), buildOk({ status: Status.AUTOCOMMIT })])).toEqual(['more', 'more', 'more', 'more', 'more', 'done']);
    expect(s.lastStatus).toBe(Status.AUTOCOMMIT);
  });

  it('ERR ends a response; LOCAL INFILE is reported', () => {
    const s = new MysqlResponseScanner(true);
    s.begin();
    expect(s.next(buildErr({ errno: 1064, sqlState: '42000', message: 'x' }))).toEqual({ kind: 'done', status: null, error: true });
    s.begin();
    expect(s.next(Buffer.from('\xfb/tmp/f', 'latin1')).kind).toBe('local_infile');
    expect(s.next(buildOk({ status: 2 })).kind).toBe('done');
    expect(() => s.next(row)).toThrow(SwitchyardError);
  });

  it('COM_STMT_PREPARE answer: params and columns, with and without EOFs', () => {
    const prepOk = (cols: number, params: number) => {
      const b = Buffer.alloc(12);
      b.writeUInt32LE(1, 1);
      b.writeUInt16LE(cols, 5);
      b.writeUInt16LE(params, 7);
      return b;
    };
    for (const [dep, cols, params, n] of [[false, 1, 2, 5], [true, 1, 2, 3], [false, 0, 0, 0], [true, 0, 1, 1]] as const) {
      const s = new MysqlResponseScanner(dep);
      s.begin('prepare');
      const kinds = walk(s, [prepOk(cols, params), ...Array.from({ length: n }, () => col)]);
      expect(kinds.at(-1)).toBe('done');
      expect(kinds.slice(0, -1).every((k) => k === 'more')).toBe(true);
    }
  });
});
