import { connect as netConnect, type Socket } from 'node:net';
import { ErrorCodes, SwitchyardError } from '../../errors.js';
import {
  Cap, MysqlPacketReader, buildHandshakeResponse, cachingSha2Token, framePacket, isErr, isOk,
  nativePasswordToken, parseAuthSwitch, parseErr, parseHandshakeV10, parseOk, type MysqlPacket,
} from '../../protocol/mysql/index.js';
import { ed25519Signature } from '../../protocol/mysql/ed25519.js';

/** What the proxy asks of every backend connection (DEPRECATE_EOF off: it makes no difference to forwarding). */
export const BACKEND_CAPS = (Cap.LONG_PASSWORD | Cap.FOUND_ROWS | Cap.LONG_FLAG | Cap.CONNECT_WITH_DB |
  Cap.LOCAL_FILES | Cap.PROTOCOL_41 | Cap.TRANSACTIONS | Cap.SECURE_CONNECTION | Cap.MULTI_STATEMENTS |
  Cap.MULTI_RESULTS | Cap.PS_MULTI_RESULTS | Cap.PLUGIN_AUTH | Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA) >>> 0;

export interface MysqlLogin {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string | null;
  /** Capabilities to ask for (intersected with the server's); default BACKEND_CAPS. */
  capabilities?: number;
  timeoutMs?: number;
  /** Collation id of the connection (the client's, so the session's character set matches); default 45, utf8mb4_general_ci. */
  charset?: number;
  /** Plugin to answer the handshake with instead of the server's (tests use it to provoke an auth switch). */
  firstPlugin?: string;
}

export interface MysqlBackendSocket {
  socket: Socket;
  reader: MysqlPacketReader;
  /** Negotiated capabilities. */
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
}

function tokenFor(plugin: string, password: string, nonce: Buffer): Buffer {
  if (plugin === 'mysql_native_password') return nativePasswordToken(password, nonce);
  if (plugin === 'caching_sha2_password') return cachingSha2Token(password, nonce);
  // MariaDB's ed25519 plugin: sign the server's 32-byte nonce with a key derived from the password.
  if (plugin === 'client_ed25519') return ed25519Signature(password, nonce.subarray(0, 32));
  throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, `backend asks for unsupported auth plugin ${plugin}`);
}

/**
 * Opens a connection to a MySQL/MariaDB node and logs in: native password,
 * MariaDB ed25519 or caching_sha2 (fast path; full auth needs TLS or RSA,
 * which this increment does not do), following an AuthSwitchRequest. Rejects with the server's ERR
 * message on bad credentials.
 */
export function connectMysql(o: MysqlLogin): Promise<MysqlBackendSocket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: o.host, port: o.port });
    socket.on('connect', () => socket.setNoDelay(true));
    socket.setNoDelay(true);
    const reader = new MysqlPacketReader({ maxMessageSize: 1 << 30 });
    let step: 'handshake' | 'auth' = 'handshake';
    let caps = 0;
    let serverCaps = 0;
    let threadId = 0;
    let serverVersion = '';
    let plugin = '';
    let nonce: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'mysql backend login timed out')), o.timeoutMs ?? 5000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.destroy();
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      let packets: MysqlPacket[];
      try {
        packets = reader.push(chunk);
      } catch (err) {
        return fail(err as Error);
      }
      for (let i = 0; i < packets.length; i++) {
        const p = packets[i]!;
        try {
          if (step === 'handshake') {
            if (isErr(p.payload)) return fail(new Error(parseErr(p.payload).message));
            const h = parseHandshakeV10(p.payload);
            serverCaps = h.capabilities;
            caps = (o.capabilities ?? BACKEND_CAPS) & h.capabilities;
            if (o.database === null) caps &= ~Cap.CONNECT_WITH_DB;
            caps >>>= 0;
            threadId = h.connectionId;
            serverVersion = h.serverVersion;
            plugin = o.firstPlugin ?? h.authPlugin;
            nonce = h.nonce;
            const resp = buildHandshakeResponse({
              capabilities: caps, maxPacketSize: 1 << 30, charset: o.charset ?? 45, user: o.user,
              authResponse: tokenFor(plugin, o.password, nonce), database: o.database, authPlugin: plugin, attrs: null,
            });
            socket.write(framePacket(resp, p.seq + 1).bytes);
            step = 'auth';
            continue;
          }
          const h = p.payload[0];
          if (isOk(p.payload) && h === 0x00) {
            clearTimeout(timer);
            socket.removeListener('data', onData);
            socket.removeListener('error', fail);
            return resolve({ socket, reader, capabilities: caps, serverCapabilities: serverCaps, threadId, serverVersion, status: parseOk(p.payload).status, leftover: packets.slice(i + 1) });
          }
          if (h === 0xff) {
            const e = parseErr(p.payload);
            // Access denied (1045, 1044) is the same on every node; keep the server's errno for the client.
            const code = e.errno === 1045 || e.errno === 1044 || e.errno === 1698 ? ErrorCodes.BACKEND_AUTH_FAILED : ErrorCodes.BACKEND_CONNECT_FAILED;
            return fail(new SwitchyardError(code, `backend login failed: ${e.errno} ${e.message}`, { cause: e }));
          }
          if (h === 0xfe) {
            const sw = parseAuthSwitch(p.payload);
            plugin = sw.plugin;
            // ed25519's nonce is exactly 32 random bytes: parseAuthSwitch's trailing-NUL trim would cut one that ends in 0.
            nonce = plugin === 'client_ed25519' ? sw.rawData : sw.data;
            socket.write(framePacket(tokenFor(plugin, o.password, nonce), p.seq + 1).bytes);
            continue;
          }
          if (h === 0x01 && plugin === 'caching_sha2_password') {
            // 0x03: fast auth succeeded, an OK follows. 0x04: full auth wanted.
            if (p.payload[1] === 0x03) continue;
            return fail(new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'caching_sha2_password full auth needs TLS or RSA (not supported to backends yet)'));
          }
          return fail(new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, `unexpected packet 0x${(h ?? 0).toString(16)} during backend login`));
        } catch (err) {
          return fail(err as Error);
        }
      }
    };
    socket.on('data', onData);
    socket.on('error', fail);
  });
}
