import { constants, generateKeyPairSync, privateDecrypt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import {
  Cap, MysqlPacketReader, Status, buildErr, buildHandshakeV10, buildOk, cachingSha2Token, framePacket, isSslRequest,
  makeNonce, parseHandshakeResponse, type MysqlPacket,
} from '../../src/protocol/mysql/index.js';

/**
 * A STAND-IN for a MySQL 8 server's login, for what no MariaDB can do:
 * caching_sha2_password full authentication. It speaks HandshakeV10 with
 * caching_sha2_password, optionally offers CLIENT_SSL (and upgrades on an
 * SSLRequest), checks the fast-path token, or answers it with 0x01 0x04
 * ("perform full authentication") and then takes the password in clear over
 * TLS, or serves its RSA public key on 0x02 and decrypts the RSA-OAEP answer,
 * as MySQL 8.0's sql/auth/sha2_password.cc does. OK or ERR 1045 at the end;
 * no command phase (a connection is closed after its OK).
 */
export interface FakeMysql8Options {
  /** 'full': the password's hash is "not cached", every login needs full authentication. */
  auth: 'fast' | 'full';
  user: string;
  password: string;
  /** Offer CLIENT_SSL with this certificate. */
  tls?: { cert: string; key: string };
  /** Address to listen on (default 127.0.0.1; 127.0.0.2 is not in the test certificate). */
  host?: string;
}

/** What one login looked like from the server's side. */
export interface SeenLogin {
  tls: boolean;
  /** The SSLRequest's and the HandshakeResponse's sequence ids. */
  seqs: number[];
  /** How the password came in full authentication: 'cleartext' (over TLS) or 'rsa'. */
  fullAuth: 'cleartext' | 'rsa' | null;
  /** The client asked for the public key (0x02). */
  askedKey: boolean;
  ok: boolean;
}

export class FakeMysql8 {
  readonly logins: SeenLogin[] = [];
  private readonly server: net.Server;
  private readonly keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  port = 0;

  private constructor(private readonly o: FakeMysql8Options) {
    this.server = net.createServer((s) => this.serve(s));
  }

  static async start(o: FakeMysql8Options): Promise<FakeMysql8> {
    const f = new FakeMysql8(o);
    await new Promise<void>((r) => f.server.listen(0, o.host ?? '127.0.0.1', r));
    f.port = (f.server.address() as net.AddressInfo).port;
    return f;
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private serve(plain: net.Socket): void {
    const nonce = makeNonce();
    const seen: SeenLogin = { tls: false, seqs: [], fullAuth: null, askedKey: false, ok: false };
    this.logins.push(seen);
    let sock: net.Socket = plain;
    let reader = new MysqlPacketReader({ maxMessageSize: 1 << 20 });
    let state: 'response' | 'token-checked' | 'full' | 'rsa' = 'response';
    const send = (payload: Buffer, seq: number) => sock.write(framePacket(payload, seq).bytes);
    const finish = (ok: boolean, seq: number) => {
      seen.ok = ok;
      if (ok) send(buildOk({ status: Status.AUTOCOMMIT }), seq);
      else send(buildErr({ errno: 1045, sqlState: '28000', message: `Access denied for user '${this.o.user}'@'127.0.0.1' (using password: YES)` }), seq);
      sock.end();
    };
    const onPacket = (p: MysqlPacket, rest: Buffer) => {
      if (state === 'response') {
        if (isSslRequest(p.payload) && this.o.tls && !seen.tls) {
          seen.seqs.push(p.seq);
          sock.removeListener('data', onData);
          // The client's TLS hello may have come in the same chunk as the SSLRequest: the TLS
          // socket reads through a stream that starts with those bytes.
          const tail = new Duplex({ read() {}, write: (c: Buffer, _e, cb) => void plain.write(c, cb) });
          if (rest.length > 0) tail.push(rest);
          plain.on('data', (d: Buffer) => tail.push(d));
          plain.on('end', () => tail.push(null));
          const secure = new tls.TLSSocket(tail as unknown as net.Socket, { isServer: true, cert: readFileSync(this.o.tls.cert), key: readFileSync(this.o.tls.key) });
          secure.on('error', () => plain.destroy());
          seen.tls = true;
          sock = secure;
          reader = new MysqlPacketReader({ maxMessageSize: 1 << 20 });
          sock.on('data', onData);
          return 'upgraded';
        }
        seen.seqs.push(p.seq);
        const r = parseHandshakeResponse(p.payload);
        if (r.user !== this.o.user || r.authPlugin !== 'caching_sha2_password') return finish(false, p.seq + 1);
        if (this.o.auth === 'fast') {
          const good = cachingSha2Token(this.o.password, nonce).equals(r.authResponse);
          if (!good) return finish(false, p.seq + 1);
          send(Buffer.from([0x01, 0x03]), p.seq + 1);
          return finish(true, p.seq + 2);
        }
        state = 'full';
        return void send(Buffer.from([0x01, 0x04]), p.seq + 1);
      }
      if (state === 'full' && seen.tls) {
        seen.fullAuth = 'cleartext';
        const pw = p.payload.subarray(0, p.payload.indexOf(0)).toString('utf8');
        return finish(p.payload[p.payload.length - 1] === 0 && pw === this.o.password, p.seq + 1);
      }
      if (state === 'full') {
        // A MySQL server refuses a cleartext password on a plain connection: only 0x02 is accepted here.
        if (p.payload.length !== 1 || p.payload[0] !== 0x02) return finish(false, p.seq + 1);
        seen.askedKey = true;
        state = 'rsa';
        const pem = this.keys.publicKey.export({ type: 'spki', format: 'pem' }) as string;
        send(Buffer.concat([Buffer.from([0x01]), Buffer.from(pem, 'latin1')]), p.seq + 1);
        return;
      }
      seen.fullAuth = 'rsa';
      let clear: Buffer;
      try {
        clear = privateDecrypt({ key: this.keys.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING }, p.payload);
      } catch {
        return finish(false, p.seq + 1);
      }
      for (let i = 0; i < clear.length; i++) clear[i] = clear[i]! ^ nonce[i % 20]!;
      const nul = clear.indexOf(0);
      finish(nul === clear.length - 1 && clear.subarray(0, nul).toString('utf8') === this.o.password, p.seq + 1);
    };
    const onData = (chunk: Buffer) => {
      // Packet by packet from the chunk, so the bytes after an SSLRequest go to TLS untouched.
      if (reader.buffered > 0) {
        for (const p of reader.push(chunk)) onPacket(p, Buffer.alloc(0));
        return;
      }
      let pos = 0;
      while (chunk.length - pos >= 4) {
        const end = pos + 4 + chunk.readUIntLE(pos, 3);
        if (end > chunk.length) break;
        const [p] = reader.push(chunk.subarray(pos, end));
        pos = end;
        if (p && onPacket(p, chunk.subarray(pos)) === 'upgraded') return;
      }
      if (pos < chunk.length) reader.push(chunk.subarray(pos));
    };
    plain.on('error', () => undefined);
    sock.on('data', onData);
    const caps = (Cap.LONG_PASSWORD | Cap.FOUND_ROWS | Cap.LONG_FLAG | Cap.CONNECT_WITH_DB | Cap.PROTOCOL_41 | Cap.TRANSACTIONS |
      Cap.SECURE_CONNECTION | Cap.MULTI_STATEMENTS | Cap.MULTI_RESULTS | Cap.PS_MULTI_RESULTS | Cap.PLUGIN_AUTH |
      Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA | (this.o.tls ? Cap.SSL : 0)) >>> 0;
    send(buildHandshakeV10({ serverVersion: '8.0.36-standin', connectionId: this.logins.length, nonce, capabilities: caps, charset: 255, status: Status.AUTOCOMMIT, authPlugin: 'caching_sha2_password' }), 0);
  }
}
