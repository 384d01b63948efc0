import { connect as netConnect, type Socket } from 'node:net';
import tls from 'node:tls';
import type { BackendTlsConfig } from '../../config/types.js';
import { ErrorCodes, SwitchyardError } from '../../errors.js';
import {
  Cap, CachingSha2Exchange, buildHandshakeResponse, buildSslRequest, cachingSha2Token, framePacket, isErr, isOk,
  nativePasswordToken, parseAuthSwitch, parseErr, parseHandshakeV10, parseOk, type HandshakeV10, type MysqlPacket, type MysqlPacketReader,
} from '../../protocol/mysql/index.js';
import { ed25519Signature } from '../../protocol/mysql/ed25519.js';
import { backendTlsOptions } from '../tls-options.js';
import { LoginChannel } from './login-channel.js';
import { SocketReads } from '../socket-reads.js';

/** What the proxy asks of every backend connection (DEPRECATE_EOF off: it makes no difference to forwarding). */
export const BACKEND_CAPS = (Cap.LONG_PASSWORD | Cap.FOUND_ROWS | Cap.LONG_FLAG | Cap.CONNECT_WITH_DB |
  Cap.LOCAL_FILES | Cap.PROTOCOL_41 | Cap.TRANSACTIONS | Cap.SECURE_CONNECTION | Cap.MULTI_STATEMENTS |
  Cap.MULTI_RESULTS | Cap.PS_MULTI_RESULTS | Cap.PLUGIN_AUTH | Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA) >>> 0;

const MAX_PACKET = 1 << 30;

export interface MysqlLogin {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string | null;
  /** Capabilities to ask for (intersected with the server's); default BACKEND_CAPS. */
  capabilities?: number;
  /** One deadline for TCP connect, TLS and login (pool.connect_timeout); default 5000. */
  timeoutMs?: number;
  /** Collation id of the connection (the client's, so the session's character set matches); default 45, utf8mb4_general_ci. */
  charset?: number;
  /** Plugin to answer the handshake with instead of the server's (tests use it to provoke an auth switch). */
  firstPlugin?: string;
  /** backend_tls; default disable. */
  tls?: BackendTlsConfig;
  /** The node's name, for error messages. */
  node?: string;
  /**
   * Read the socket with `onread` into a reused buffer (SocketReads) instead of 'data'
   * events; plain TCP only. For pooled connections, whose reader (MysqlBackendConn) follows
   * the reuse rules; a caller that reads the socket itself leaves it off.
   */
  readInPlace?: boolean;
}

export interface MysqlBackendSocket {
  /** The plain socket, or the TLS socket over it. */
  socket: Socket;
  reader: MysqlPacketReader;
  /** Negotiated capabilities (CLIENT_SSL among them on a TLS connection). */
  capabilities: number;
  /** The node's thread id (for KILL). */
  threadId: number;
  serverVersion: string;
  /** Everything the server offered in its handshake. */
  serverCapabilities: number;
  /** Server status after login. */
  status: number;
  /** Packets that arrived in the same chunk after the login's OK (normally none). */
  leftover: MysqlPacket[];
  /** The connection is TLS (backend_tls). */
  tls: boolean;
  /** Set when the socket is read with `onread` (readInPlace on plain TCP): no 'data' events. */
  reads: SocketReads | null;
}

function tokenFor(plugin: string, password: string, nonce: Buffer): Buffer {
  if (plugin === 'mysql_native_password') return nativePasswordToken(password, nonce);
  if (plugin === 'caching_sha2_password') return cachingSha2Token(password, nonce);
  // MariaDB's ed25519 plugin: sign the server's 32-byte nonce with a key derived from the password.
  if (plugin === 'client_ed25519') return ed25519Signature(password, nonce.subarray(0, 32));
  throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, `backend asks for unsupported auth plugin ${plugin}`);
}

/**
 * Opens a connection to a MySQL/MariaDB node and logs in:
 *   1. TCP connect; one deadline (timeoutMs) bounds everything up to the login's OK;
 *   2. the server's HandshakeV10;
 *   3. backend_tls: SSLRequest (seq 1) and the TLS upgrade when the server offers CLIENT_SSL
 *      (prefer goes on in plain text when it does not; require and verify-full fail);
 *   4. HandshakeResponse41 and the authentication the server leads: native password, MariaDB
 *      ed25519, caching_sha2_password (fast path, or full authentication over TLS or RSA),
 *      following an AuthSwitchRequest.
 * Rejects with BACKEND_AUTH_FAILED (the server's errno in the message) on bad credentials,
 * BACKEND_CONNECT_FAILED on TLS or timeout, or the socket's own error (ECONNREFUSED...).
 */
export async function connectMysql(o: MysqlLogin): Promise<MysqlBackendSocket> {
  const timeoutMs = o.timeoutMs ?? 5000;
  const mode = o.tls?.mode ?? 'disable';
  const reads = o.readInPlace && mode === 'disable' ? new SocketReads() : null;
  const raw = reads ? netConnect({ host: o.host, port: o.port, onread: reads.options() }) : netConnect({ host: o.host, port: o.port });
  raw.setNoDelay(true);
  let socket: Socket = raw;
  // Destroying whichever socket is current fails the step that waits on it.
  const timer = setTimeout(() => socket.destroy(connectError(o, `login timed out after ${timeoutMs}ms`)), timeoutMs);
  const closed = () => connectError(o, 'the server closed the connection during login');
  let channel = new LoginChannel(raw, closed, reads);
  try {
    const first = await channel.next();
    if (isErr(first.payload)) {
      // Refused before any login (too many connections, host blocked): nothing about the credentials.
      const e = parseErr(first.payload);
      throw new SwitchyardError(ErrorCodes.BACKEND_CONNECT_FAILED, `backend login failed: ${e.errno} ${e.message}`, { cause: e });
    }
    const h = parseHandshakeV10(first.payload);
    let caps = (o.capabilities ?? BACKEND_CAPS) & h.capabilities;
    if (o.database === null) caps &= ~Cap.CONNECT_WITH_DB;
    caps >>>= 0;
    const charset = o.charset ?? 45;
    let seq = first.seq + 1;
    let secure = false;
    if (mode !== 'disable' && h.capabilities & Cap.SSL) {
      caps = (caps | Cap.SSL) >>> 0;
      raw.write(framePacket(buildSslRequest({ capabilities: caps, maxPacketSize: MAX_PACKET, charset }), seq++).bytes);
      channel.detach();
      // From here the TLS socket reports the connection's errors; one surfacing on the plain socket too must not go unhandled.
      raw.on('error', () => undefined);
      socket = startTls(raw, o);
      await tlsEstablished(socket as tls.TLSSocket, o);
      channel = new LoginChannel(socket, closed);
      secure = true;
    } else if (mode === 'require' || mode === 'verify-full') {
      throw connectError(o, `the server does not offer TLS (no CLIENT_SSL in its handshake) but backend_tls.mode is ${mode}`);
    }
    const status = await authenticate(channel, o, h, { caps, charset, seq, secure });
    const leftover = channel.detach();
    return { socket, reader: channel.reader, capabilities: caps, serverCapabilities: h.capabilities, threadId: h.connectionId, serverVersion: h.serverVersion, status, leftover, tls: secure, reads };
  } catch (err) {
    channel.detach();
    // Whatever a dying socket still reports is this failure's echo: not unhandled.
    for (const s of [socket, raw]) s.on('error', () => undefined).destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

function startTls(raw: Socket, o: MysqlLogin): tls.TLSSocket {
  let opts: tls.ConnectionOptions;
  try {
    opts = backendTlsOptions(raw, o.host, o.tls!);
  } catch (e) {
    throw connectError(o, `cannot read backend_tls.ca: ${(e as Error).message}`);
  }
  return tls.connect(opts);
}

function tlsEstablished(secure: tls.TLSSocket, o: MysqlLogin): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null) => {
      secure.removeListener('secureConnect', onSecure);
      secure.removeListener('error', onError);
      secure.removeListener('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onSecure = () => done(null);
    // A timeout's error already names the node; a handshake failure gets "TLS:" (bad certificate, wrong CA...).
    const onError = (e: Error) => done(e instanceof SwitchyardError ? e : connectError(o, `TLS: ${e.message}`));
    const onClose = () => done(connectError(o, 'TLS: the server closed the connection during the TLS handshake'));
    secure.once('secureConnect', onSecure);
    secure.once('error', onError);
    secure.once('close', onClose);
  });
}

/** HandshakeResponse41, then the server's lead until its OK (returns the status flags) or ERR (throws). */
async function authenticate(ch: LoginChannel, o: MysqlLogin, h: HandshakeV10, s: { caps: number; charset: number; seq: number; secure: boolean }): Promise<number> {
  let plugin = o.firstPlugin ?? h.authPlugin;
  let nonce = h.nonce;
  let sha2 = new CachingSha2Exchange(o.password, nonce, s.secure);
  const send = (payload: Buffer, seq: number) => ch.socket.write(framePacket(payload, seq).bytes);
  send(buildHandshakeResponse({
    capabilities: s.caps, maxPacketSize: MAX_PACKET, charset: s.charset, user: o.user,
    authResponse: tokenFor(plugin, o.password, nonce), database: o.database, authPlugin: plugin, attrs: null,
  }), s.seq);
  for (;;) {
    const p = await ch.next();
    const head = p.payload[0];
    if (head === 0x00 && isOk(p.payload)) return parseOk(p.payload).status;
    if (head === 0xff) {
      const e = parseErr(p.payload);
      // Access denied (1045, 1044, 1698) is the same on every node; keep the server's errno for the client.
      const code = e.errno === 1045 || e.errno === 1044 || e.errno === 1698 ? ErrorCodes.BACKEND_AUTH_FAILED : ErrorCodes.BACKEND_CONNECT_FAILED;
      throw new SwitchyardError(code, `backend login failed: ${e.errno} ${e.message}`, { cause: e });
    }
    if (head === 0xfe) {
      const sw = parseAuthSwitch(p.payload);
      plugin = sw.plugin;
      // ed25519's nonce is exactly 32 random bytes: parseAuthSwitch's trailing-NUL trim would cut one that ends in 0.
      nonce = plugin === 'client_ed25519' ? sw.rawData : sw.data;
      sha2 = new CachingSha2Exchange(o.password, nonce, s.secure);
      send(tokenFor(plugin, o.password, nonce), p.seq + 1);
      continue;
    }
    if (head === 0x01 && plugin === 'caching_sha2_password') {
      const answer = sha2.onMoreData(p.payload);
      if (answer) send(answer, p.seq + 1);
      continue;
    }
    throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, `unexpected packet 0x${(head ?? 0).toString(16)} during backend login`);
  }
}

function connectError(o: MysqlLogin, why: string): SwitchyardError {
  return new SwitchyardError(ErrorCodes.BACKEND_CONNECT_FAILED, `${o.node ? `node ${o.node} ` : ''}(${o.host}:${o.port}): ${why}`);
}
