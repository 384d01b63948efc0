import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile } from 'node:child_process';
import { constants, publicEncrypt } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import {
  Cap, MysqlPacketReader, PayloadReader, buildHandshakeResponse, framePacket, isErr, nativePasswordToken as nativeToken, parseAuthSwitch,
  parseErr, parseHandshakeV10, type MysqlPacket,
} from '../../src/protocol/mysql/index.js';
import type { RunningProxy } from '../support/proxy.js';
import { makeTestCa, type TestCa } from '../support/tls.js';
import { serverIds, startMysqlProxy } from './mysql-proxy-support.js';

/**
 * caching_sha2_password full authentication and sha256_password, server side:
 * the proxy's MySQL listener (tls.mode prefer: TLS offered, not required) in
 * front of the MariaDB test cluster. Clients: a hand-written one (our codec),
 * the mariadb command-line client (Connector/C, --default-auth) and mysql2.
 * Every login that succeeds runs SELECT @@server_id on a node.
 */
const run = promisify(execFile);
const info = inject('mariaCluster');
const app = info.users.app;
let proxy: RunningProxy;
let ca: TestCa;
let ids: Map<number, string>;

beforeAll(async () => {
  ca = makeTestCa();
  ids = await serverIds(info);
  proxy = await startMysqlProxy(info, { clusterYaml: `    tls:\n      cert: ${ca.serverCert}\n      key: ${ca.serverKey}\n      mode: prefer\n` });
});

afterAll(async () => {
  await proxy?.stop();
  if (ca) rmSync(ca.dir, { recursive: true, force: true });
});

/** One packet at a time from a socket (which may be replaced by its TLS wrapper). */
class PacketPipe {
  private reader = new MysqlPacketReader({ maxMessageSize: 1 << 24 });
  private queue: MysqlPacket[] = [];
  private waiter: ((p: MysqlPacket | null) => void) | null = null;
  private closed = false;
  constructor(public socket: net.Socket) {
    this.attach(socket);
  }
  attach(s: net.Socket): void {
    this.socket = s;
    s.on('data', (chunk: Buffer) => {
      for (const p of this.reader.push(chunk)) {
        if (this.waiter) {
          const w = this.waiter;
          this.waiter = null;
          w(p);
        } else this.queue.push(p);
      }
    });
    s.on('close', () => {
      this.closed = true;
      this.waiter?.(null);
    });
    s.on('error', () => undefined);
  }
  /** Stops reading (before a TLS upgrade: the next bytes are the TLS stream's). */
  detach(): void {
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('close');
  }
  next(): Promise<MysqlPacket | null> {
    const q = this.queue.shift();
    if (q) return Promise.resolve(q);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }
  send(payload: Buffer, seq: number): void {
    this.socket.write(framePacket(payload, seq).bytes);
  }
}

interface RawLogin {
  /** Payloads the proxy sent between the handshake response and the final OK/ERR. */
  transcript: Buffer[];
  err: { errno: number; message: string } | null;
  pipe: PacketPipe;
}

/**
 * Our codec as client: handshake, optional SSLRequest + TLS (the test CA
 * verified), a HandshakeResponse41 naming `plugin` with `data`, then `answer`
 * says what to send back to each packet of the exchange (null: send nothing
 * and wait for the end).
 */
async function rawLogin(o: {
  user: string;
  tls: boolean;
  plugin: string;
  data: (nonce: Buffer) => Buffer;
  answer: (payload: Buffer, nonce: Buffer) => Buffer | null;
}): Promise<RawLogin> {
  const socket = net.connect(proxy.port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const pipe = new PacketPipe(socket);
  const hs = parseHandshakeV10((await pipe.next())!.payload);
  let caps = (Cap.LONG_PASSWORD | Cap.LONG_FLAG | Cap.CONNECT_WITH_DB | Cap.PROTOCOL_41 | Cap.TRANSACTIONS | Cap.SECURE_CONNECTION |
    Cap.PLUGIN_AUTH | Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA) >>> 0;
  let seq = 1;
  if (o.tls) {
    expect(hs.capabilities & Cap.SSL).toBeTruthy();
    caps = (caps | Cap.SSL) >>> 0;
    const req = Buffer.alloc(32);
    req.writeUInt32LE(caps, 0);
    req.writeUInt32LE(1 << 24, 4);
    req[8] = 45;
    pipe.detach();
    pipe.send(req, seq++);
    const secure = tls.connect({ socket, ca: readFileSync(ca.caCert), servername: 'localhost' });
    await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
    pipe.attach(secure);
  }
  pipe.send(buildHandshakeResponse({
    capabilities: caps, maxPacketSize: 1 << 24, charset: 45, user: o.user, authResponse: o.data(hs.nonce), database: 'app', authPlugin: o.plugin, attrs: null,
  }), seq);
  const transcript: Buffer[] = [];
  for (;;) {
    const p = await pipe.next();
    if (!p) throw new Error(`connection closed during login; transcript ${transcript.map((t) => t.toString('hex', 0, 4)).join(' ')}`);
    if (p.payload[0] === 0x00) return { transcript, err: null, pipe };
    if (isErr(p.payload)) {
      const e = parseErr(p.payload);
      return { transcript, err: { errno: e.errno, message: e.message }, pipe };
    }
    transcript.push(Buffer.from(p.payload));
    const reply = o.answer(p.payload, hs.nonce);
    if (reply) pipe.send(reply, (p.lastSeq + 1) & 0xff);
  }
}

/** SELECT @@server_id over a raw login (no DEPRECATE_EOF: count, column, EOF, row, EOF): the node's name. */
async function serverNode(pipe: PacketPipe): Promise<string> {
  pipe.send(Buffer.concat([Buffer.from([0x03]), Buffer.from('SELECT @@server_id')]), 0);
  const got: Buffer[] = [];
  for (let i = 0; i < 5; i++) {
    const p = await pipe.next();
    if (!p) throw new Error('closed');
    if (isErr(p.payload)) throw new Error(parseErr(p.payload).message);
    got.push(p.payload);
  }
  const id = Number(new PayloadReader(got[3]!).lenencBytes().toString());
  pipe.socket.destroy();
  return ids.get(id) ?? `unknown(${id})`;
}

/** RSA-OAEP(SHA-1) of (password NUL) XOR nonce repeated, as clients encrypt it. */
function encrypt(password: string, nonce: Buffer, pemPacket: Buffer): Buffer {
  expect(pemPacket[0]).toBe(0x01);
  const plain = Buffer.from(password + '\0', 'utf8');
  for (let i = 0; i < plain.length; i++) plain[i] = plain[i]! ^ nonce[i % 20]!;
  return publicEncrypt({ key: pemPacket.subarray(1).toString(), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, plain);
}

/** A caching_sha2_password answer that cannot be a fast-path scramble (20 bytes): the proxy asks for full auth. */
const NOT_A_SCRAMBLE = () => Buffer.alloc(20, 0x41);
const isFullAuth = (p: Buffer) => p.length === 2 && p[0] === 0x01 && p[1] === 0x04;
const isPem = (p: Buffer) => p[0] === 0x01 && p.subarray(1).toString().startsWith('-----BEGIN PUBLIC KEY-----');

/** caching_sha2 full auth as a client does it: on TLS the password in clear, without TLS the key exchange. */
function sha2Full(password: string, onTls: boolean) {
  return (p: Buffer, nonce: Buffer): Buffer | null => {
    if (isFullAuth(p)) return onTls ? Buffer.from(password + '\0') : Buffer.from([0x02]);
    if (isPem(p)) return encrypt(password, nonce, p);
    throw new Error(`unexpected ${p.toString('hex')}`);
  };
}

describe('caching_sha2_password full authentication (hand-written client)', () => {
  it('over TLS: 0x01 0x04, the password in clear, OK; a query runs on a node', async () => {
    const r = await rawLogin({ user: app.user, tls: true, plugin: 'caching_sha2_password', data: NOT_A_SCRAMBLE, answer: sha2Full(app.password, true) });
    expect(r.err).toBeNull();
    expect(r.transcript.map((p) => p.toString('hex'))).toEqual(['0104']);
    expect(info.nodes.map((n) => n.name)).toContain(await serverNode(r.pipe));
  });

  it('without TLS: 0x01 0x04, key request, PEM, RSA ciphertext, OK; a query runs on a node', async () => {
    const t0 = performance.now();
    const r = await rawLogin({ user: app.user, tls: false, plugin: 'caching_sha2_password', data: NOT_A_SCRAMBLE, answer: sha2Full(app.password, false) });
    const ms = performance.now() - t0;
    expect(r.err).toBeNull();
    expect(r.transcript).toHaveLength(2);
    expect(isFullAuth(r.transcript[0]!)).toBe(true);
    expect(isPem(r.transcript[1]!)).toBe(true);
    console.log(`RSA full-auth login (first of the process, key pair made on demand) took ${ms.toFixed(0)} ms`);
    expect(info.nodes.map((n) => n.name)).toContain(await serverNode(r.pipe));
  });

  it('a wrong password is 1045 on both paths, and an unknown user gets the same 1045 after the same key exchange', async () => {
    const tlsWrong = await rawLogin({ user: app.user, tls: true, plugin: 'caching_sha2_password', data: NOT_A_SCRAMBLE, answer: sha2Full('wrong', true) });
    expect(tlsWrong.err?.errno).toBe(1045);
    const rsaWrong = await rawLogin({ user: app.user, tls: false, plugin: 'caching_sha2_password', data: NOT_A_SCRAMBLE, answer: sha2Full('wrong', false) });
    const rsaUnknown = await rawLogin({ user: 'nosuchuser', tls: false, plugin: 'caching_sha2_password', data: NOT_A_SCRAMBLE, answer: sha2Full('wrong', false) });
    expect(rsaWrong.err?.errno).toBe(1045);
    expect(rsaWrong.transcript).toHaveLength(2); // 0x01 0x04, then the PEM: refused only at the end
    expect(rsaUnknown.transcript.map((p) => p.subarray(0, 2).toString('hex'))).toEqual(rsaWrong.transcript.map((p) => p.subarray(0, 2).toString('hex')));
    expect(rsaUnknown.transcript[1]).toEqual(rsaWrong.transcript[1]); // the same public key
    expect(rsaUnknown.err).toEqual({ ...rsaWrong.err!, message: rsaWrong.err!.message.replace(app.user, 'nosuchuser') });
    for (const r of [tlsWrong, rsaWrong, rsaUnknown]) r.pipe.socket.destroy();
  });

  it('refuses the right password sent in clear over plain TCP (1045)', async () => {
    const r = await rawLogin({
      user: app.user, tls: false, plugin: 'caching_sha2_password', data: NOT_A_SCRAMBLE,
      answer: (p) => (isFullAuth(p) ? Buffer.from(app.password + '\0') : null),
    });
    expect(r.transcript.map((p) => p.toString('hex'))).toEqual(['0104']);
    expect(r.err?.errno).toBe(1045);
    r.pipe.socket.destroy();
  });

  it('a wrong 32-byte scramble stays a 1045 without full auth being offered', async () => {
    const r = await rawLogin({ user: app.user, tls: false, plugin: 'caching_sha2_password', data: () => Buffer.alloc(32, 7), answer: () => null });
    expect(r.transcript).toEqual([]);
    expect(r.err?.errno).toBe(1045);
    r.pipe.socket.destroy();
  });
});

describe('sha256_password (hand-written client)', () => {
  it('over TLS: the password in clear in the handshake response; a query runs', async () => {
    const r = await rawLogin({ user: app.user, tls: true, plugin: 'sha256_password', data: () => Buffer.from(app.password + '\0'), answer: () => null });
    expect(r.err).toBeNull();
    expect(r.transcript).toEqual([]);
    expect(info.nodes.map((n) => n.name)).toContain(await serverNode(r.pipe));
  });

  it('without TLS: key request 0x01 in the handshake response, PEM, ciphertext; a query runs', async () => {
    const r = await rawLogin({ user: app.user, tls: false, plugin: 'sha256_password', data: () => Buffer.from([0x01]), answer: (p, nonce) => encrypt(app.password, nonce, p) });
    expect(r.err).toBeNull();
    expect(r.transcript).toHaveLength(1);
    expect(isPem(r.transcript[0]!)).toBe(true);
    expect(info.nodes.map((n) => n.name)).toContain(await serverNode(r.pipe));
  });

  it('without data: an AuthSwitchRequest to sha256_password with the nonce, then the key exchange', async () => {
    const r = await rawLogin({
      user: app.user, tls: false, plugin: 'sha256_password', data: () => Buffer.alloc(0),
      answer: (p, nonce) => {
        if (p[0] === 0xfe) {
          const sw = parseAuthSwitch(p);
          expect(sw.plugin).toBe('sha256_password');
          expect(sw.data).toEqual(nonce);
          return Buffer.from([0x01]);
        }
        return encrypt(app.password, nonce, p);
      },
    });
    expect(r.err).toBeNull();
    expect(info.nodes.map((n) => n.name)).toContain(await serverNode(r.pipe));
  });

  it('wrong password (TLS and RSA) and cleartext over plain TCP are 1045', async () => {
    const a = await rawLogin({ user: app.user, tls: true, plugin: 'sha256_password', data: () => Buffer.from('wrong\0'), answer: () => null });
    const b = await rawLogin({ user: app.user, tls: false, plugin: 'sha256_password', data: () => Buffer.from([0x01]), answer: (p, nonce) => encrypt('wrong', nonce, p) });
    const c = await rawLogin({ user: app.user, tls: false, plugin: 'sha256_password', data: () => Buffer.from(app.password + '\0'), answer: () => null });
    for (const r of [a, b, c]) {
      expect(r.err?.errno).toBe(1045);
      r.pipe.socket.destroy();
    }
    expect(c.transcript).toEqual([]); // no key offered to a client that already sent its password in clear
  });
});

/** COM_CHANGE_USER (SECURE_CONNECTION layout, no attributes) on a logged-in raw connection; ends at OK/ERR. */
async function changeUser(pipe: PacketPipe, user: string, plugin: string, data: Buffer, nonce: Buffer, answer: (p: Buffer, nonce: Buffer) => Buffer | null): Promise<{ transcript: Buffer[]; errno: number | null }> {
  const charset = Buffer.alloc(2);
  charset.writeUInt16LE(45);
  pipe.send(Buffer.concat([Buffer.from([0x11]), Buffer.from(user + '\0'), Buffer.from([data.length]), data, Buffer.from('app\0'), charset, Buffer.from(plugin + '\0')]), 0);
  const transcript: Buffer[] = [];
  for (;;) {
    const p = (await pipe.next())!;
    if (p.payload[0] === 0x00) return { transcript, errno: null };
    if (isErr(p.payload)) return { transcript, errno: parseErr(p.payload).errno };
    transcript.push(Buffer.from(p.payload));
    const reply = answer(p.payload, nonce);
    if (reply) pipe.send(reply, (p.lastSeq + 1) & 0xff);
  }
}

describe('COM_CHANGE_USER', () => {
  it('takes the same exchanges: caching_sha2 full auth over RSA and sha256_password on TLS, then queries run; a wrong password closes with 1045', async () => {
    let nonce: Buffer = Buffer.alloc(0);
    const plain = await rawLogin({ user: app.user, tls: false, plugin: 'caching_sha2_password', data: (n) => ((nonce = n), NOT_A_SCRAMBLE()), answer: sha2Full(app.password, false) });
    expect(plain.err).toBeNull();
    const cu = await changeUser(plain.pipe, app.user, 'caching_sha2_password', NOT_A_SCRAMBLE(), nonce, sha2Full(app.password, false));
    expect(cu.errno).toBeNull();
    expect(cu.transcript).toHaveLength(2);
    expect(isPem(cu.transcript[1]!)).toBe(true);
    expect(info.nodes.map((n) => n.name)).toContain(await serverNode(plain.pipe));

    const secure = await rawLogin({ user: app.user, tls: true, plugin: 'mysql_native_password', data: (n) => ((nonce = n), nativeToken(app.password, n)), answer: () => null });
    expect(secure.err).toBeNull();
    const ok = await changeUser(secure.pipe, app.user, 'sha256_password', Buffer.from(app.password + '\0'), nonce, () => null);
    expect(ok).toEqual({ transcript: [], errno: null });
    const bad = await changeUser(secure.pipe, app.user, 'sha256_password', Buffer.from('wrong\0'), nonce, () => null);
    expect(bad.errno).toBe(1045);
    secure.pipe.socket.destroy();
  });
});

describe('real clients', () => {
  const cli = (port: number, args: string[]) =>
    run('mariadb', ['-h', '127.0.0.1', '-P', String(port), '-u', app.user, '--batch', '--skip-column-names', ...args, 'app', '-e', 'SELECT @@server_id'], { timeout: 60_000 });
  const nodeOf = (stdout: string) => ids.get(Number(stdout.trim()));

  it('the mariadb client (Connector/C) with --default-auth=sha256_password without TLS: RSA key exchange (seen on the wire)', async () => {
    const wire = await relay(proxy.port);
    try {
      const { stdout } = await cli(wire.port, [`-p${app.password}`, '--default-auth=sha256_password', '--skip-ssl']);
      expect(info.nodes.map((n) => n.name)).toContain(nodeOf(stdout));
      const fromServer = wire.fromServer().toString('latin1');
      expect(fromServer).toContain('sha256_password\0'); // the AuthSwitchRequest to its own plugin
      expect(fromServer).toContain('-----BEGIN PUBLIC KEY-----');
      const e = await cli(wire.port, ['-pwrong', '--default-auth=sha256_password', '--skip-ssl']).then(() => null, (err: { stderr: string }) => err);
      expect(e?.stderr).toMatch(/ERROR 1045/);
    } finally {
      wire.close();
    }
  });

  it('the mariadb client with --default-auth=sha256_password over TLS (certificate verified)', async () => {
    const { stdout } = await cli(proxy.port, [`-p${app.password}`, '--default-auth=sha256_password', '--ssl', `--ssl-ca=${ca.caCert}`, '--ssl-verify-server-cert']);
    expect(info.nodes.map((n) => n.name)).toContain(nodeOf(stdout));
  });

  it('the mariadb client with --default-auth=caching_sha2_password: switched to its own plugin, fast path (seen on the wire)', async () => {
    const wire = await relay(proxy.port);
    try {
      const { stdout } = await cli(wire.port, [`-p${app.password}`, '--default-auth=caching_sha2_password', '--skip-ssl']);
      expect(info.nodes.map((n) => n.name)).toContain(nodeOf(stdout));
      const fromServer = wire.fromServer().toString('latin1');
      expect(fromServer).toContain('caching_sha2_password\0');
      expect(fromServer).not.toContain('PUBLIC KEY'); // no full auth for a client that can do the fast path
      const e = await cli(wire.port, ['-pwrong', '--default-auth=caching_sha2_password', '--skip-ssl']).then(() => null, (err: { stderr: string }) => err);
      expect(e?.stderr).toMatch(/ERROR 1045/);
    } finally {
      wire.close();
    }
  });

  it('mysql2 over TLS with sha256_password (the handshake renamed by a relay: mysql2 follows the server plugin)', async () => {
    const wire = await relay(proxy.port, 'sha256_password');
    // A switch to native password would call this plugin and fail the login: the proxy must take sha256_password as sent.
    const authPlugins = { mysql_native_password: () => () => { throw new Error('switched to mysql_native_password'); } };
    const ssl = { ca: readFileSync(ca.caCert, 'utf8'), rejectUnauthorized: true };
    try {
      const c = await mysql.createConnection({ host: '127.0.0.1', port: wire.port, user: app.user, password: app.password, database: 'app', ssl, authPlugins });
      const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT @@server_id AS id');
      expect(info.nodes.map((n) => n.name)).toContain(ids.get(Number(rows[0]!.id)));
      await c.end();
      const e = await mysql.createConnection({ host: '127.0.0.1', port: wire.port, user: app.user, password: 'wrong', database: 'app', ssl, authPlugins })
        .then(() => null, (err: { errno: number }) => err);
      expect(e?.errno).toBe(1045);
    } finally {
      wire.close();
    }
  });
});

/**
 * A TCP relay to the proxy that records both directions and can rename the
 * default plugin of the first server packet (the handshake, always in clear);
 * everything else, TLS included, passes through untouched. mysql2 picks its
 * first plugin from the handshake, and the proxy's names mysql_native_password.
 */
async function relay(target: number, renamePlugin?: string): Promise<{ port: number; fromServer: () => Buffer; close(): void }> {
  const sockets = new Set<net.Socket>();
  const seen: Buffer[] = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    sockets.add(client).add(upstream);
    let first = renamePlugin !== undefined;
    let head = Buffer.alloc(0);
    upstream.on('data', (chunk: Buffer) => {
      seen.push(chunk);
      if (!first) return void client.write(chunk);
      head = Buffer.concat([head, chunk]);
      if (head.length < 4 || head.length < 4 + head.readUIntLE(0, 3)) return;
      first = false;
      const len = head.readUIntLE(0, 3);
      const payload = head.subarray(4, 4 + len);
      const name = 'mysql_native_password\0';
      expect(payload.subarray(payload.length - name.length).toString()).toBe(name);
      const renamed = Buffer.concat([payload.subarray(0, payload.length - name.length), Buffer.from(renamePlugin + '\0')]);
      client.write(Buffer.concat([framePacket(renamed, head[3]!).bytes, head.subarray(4 + len)]));
    });
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    fromServer: () => Buffer.concat(seen),
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
