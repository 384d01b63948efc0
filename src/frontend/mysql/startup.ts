import type net from 'node:net';
import tls from 'node:tls';
import { ErrorCodes, SwitchyardError, isSwitchyardError } from '../../errors.js';
import {
  Cap, MysqlPacketReader, Status, buildHandshakeV10, buildOk, framePacket, isSslRequest, makeNonce,
  parseHandshakeResponse, type MysqlPacket,
} from '../../protocol/mysql/index.js';
import { ServerAuth, type ServerAuthStep } from '../../protocol/mysql/server-auth.js';
import type { Logger } from '../../observability/logger.js';
import type { MysqlClusterRuntime, MysqlPoolKey } from '../../runtime/mysql-cluster.js';
import { authFailureDelay, authSucceeded } from '../pg/startup.js';
import { MysqlSession } from './session.js';
import { checkBackend } from './backend-check.js';
import { MysqlServerError, errPayload } from './errors.js';
import { serverRsaKeys } from './full-auth.js';

export interface MysqlListenerContext {
  runtime: MysqlClusterRuntime;
  listener: 'rw' | 'ro';
  tlsContext: tls.SecureContext | null;
  log: Logger;
  admit(): boolean;
  release(): void;
}

/** Offered to every client (SSL only when TLS is configured); compression is not offered. */
const CLIENT_FACING_CAPS = (Cap.LONG_PASSWORD | Cap.FOUND_ROWS | Cap.LONG_FLAG | Cap.CONNECT_WITH_DB | Cap.LOCAL_FILES |
  Cap.IGNORE_SPACE | Cap.PROTOCOL_41 | Cap.INTERACTIVE | Cap.TRANSACTIONS | Cap.SECURE_CONNECTION | Cap.MULTI_STATEMENTS |
  Cap.MULTI_RESULTS | Cap.PS_MULTI_RESULTS | Cap.PLUGIN_AUTH | Cap.CONNECT_ATTRS | Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA |
  Cap.SESSION_TRACK | Cap.DEPRECATE_EOF) >>> 0;

/** Client flags that change what the server sends: the backend connection must have the client's. */
const PASS_THROUGH = (Cap.FOUND_ROWS | Cap.LOCAL_FILES | Cap.IGNORE_SPACE | Cap.MULTI_STATEMENTS | Cap.MULTI_RESULTS |
  Cap.PS_MULTI_RESULTS | Cap.SESSION_TRACK | Cap.DEPRECATE_EOF) >>> 0;

/** Always asked of backends. */
const BACKEND_BASE = (Cap.LONG_PASSWORD | Cap.LONG_FLAG | Cap.PROTOCOL_41 | Cap.TRANSACTIONS | Cap.SECURE_CONNECTION |
  Cap.PLUGIN_AUTH | Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA) >>> 0;

/** The largest packet a client may send before it is logged in. */
const LOGIN_MAX_PACKET = 64 * 1024;

/**
 * Runs one MySQL client connection from accept to the command phase:
 *   1. Handshake v10 with a proxy connection id and a fresh nonce (the server
 *      version and flags of a real node);
 *   2. optional SSLRequest and TLS upgrade;
 *   3. HandshakeResponse41, then the exchange of ServerAuth
 *      (src/protocol/mysql/server-auth.ts): mysql_native_password, the
 *      caching_sha2_password fast path (the proxy knows the password), its full
 *      authentication and sha256_password (cleartext on TLS, the RSA key
 *      exchange without); other plugins are switched to mysql_native_password;
 *      unknown user and wrong password get the same 1045 after the same work;
 *   4. a backend connection with the client's user, flags and character set
 *      (and its database, checked with COM_INIT_DB) proves the nodes accept them;
 *   5. OK, and hand-over to MysqlSession.
 * Everything before step 5 is bounded by limits.auth_timeout.
 */
export function handleMysqlConnection(raw: net.Socket, ctx: MysqlListenerContext): void {
  const { runtime, log } = ctx;
  let socket: net.Socket = raw;
  let reader = new MysqlPacketReader({ maxMessageSize: LOGIN_MAX_PACKET });
  let done = false;
  let admitted = false;
  let handedOver = false;
  let isTls = false;
  let advertised = 0;
  let step: 'handshake' | 'response' | 'auth' | 'backend' = 'handshake';
  let auth: ServerAuth | null = null;
  // An ERR before the handshake (too many clients, no node reachable) is the first packet: sequence id 0.
  let nextSeq = 0;
  const nonce = makeNonce();
  const address = raw.remoteAddress ?? 'unknown';
  let response: ReturnType<typeof parseHandshakeResponse> | null = null;
  let connectionId = 0;

  raw.setNoDelay(true);
  const timer = setTimeout(() => fail(new SwitchyardError(ErrorCodes.AUTH_TIMEOUT, `authentication not completed within ${runtime.limits.auth_timeout}ms`)), runtime.limits.auth_timeout);
  timer.unref();

  const cleanup = () => {
    clearTimeout(timer);
    socket.removeListener('data', onData);
  };
  const onClose = () => {
    if (done) return;
    done = true;
    cleanup();
    if (connectionId !== 0 && !handedOver) runtime.unregister(connectionId);
    if (admitted) {
      ctx.release();
      runtime.clientConnections--;
    }
  };
  const send = (payload: Buffer) => {
    const f = framePacket(payload, nextSeq);
    nextSeq = f.nextSeq;
    socket.write(f.bytes);
  };
  let delaying = false;
  const fail = (err: unknown) => {
    if (done) return;
    if (isSwitchyardError(err) && err.code === ErrorCodes.AUTH_FAILED && !delaying) {
      const wait = authFailureDelay(address);
      if (wait > 0) {
        delaying = true;
        cleanup();
        setTimeout(() => fail(err), wait).unref();
        return;
      }
    }
    const code = err instanceof MysqlServerError ? ErrorCodes.BACKEND_AUTH_FAILED : isSwitchyardError(err) ? err.code : ErrorCodes.INTERNAL;
    runtime.counters.error(code);
    log.debug({ code, message: (err as Error)?.message }, 'client login failed');
    if (socket.writable) {
      const f = framePacket(errPayload(err), nextSeq);
      socket.end(f.bytes);
    }
    setTimeout(() => socket.destroy(), 2000).unref();
    onClose();
  };

  /** Bytes before the first packet is complete while an SSLRequest may come (see below). */
  let pre: Buffer | null = null;
  const onData = (input: Buffer) => {
    let chunk = input;
    if (step === 'response' && !isTls && advertised & Cap.SSL) {
      // A client does not wait for an answer to SSLRequest: its TLS ClientHello may share
      // the chunk. Those bytes are not MySQL packets, so the SSLRequest is cut out here and
      // the rest goes to the TLS socket.
      chunk = pre ? Buffer.concat([pre, input]) : input;
      pre = null;
      if (chunk.length < 4 || (chunk.readUIntLE(0, 3) === 32 && chunk.length < 36)) {
        pre = chunk;
        return;
      }
      if (chunk.readUIntLE(0, 3) === 32 && isSslRequest(chunk.subarray(4, 36))) {
        nextSeq = (chunk[3]! + 1) & 0xff;
        try {
          return upgrade(chunk.subarray(36));
        } catch (e) {
          return fail(e);
        }
      }
    }
    let packets: MysqlPacket[];
    try {
      packets = reader.push(chunk);
    } catch (e) {
      return fail(e);
    }
    for (const p of packets) {
      if (done || step === 'backend') return;
      const readerNow = reader;
      try {
        onPacket(p);
      } catch (e) {
        return fail(e);
      }
      if (reader !== readerNow) return; // TLS upgrade: later bytes belong to the TLS stream
    }
  };

  const onPacket = (p: MysqlPacket) => {
    nextSeq = (p.lastSeq + 1) & 0xff;
    if (step === 'response') {
      if (isSslRequest(p.payload)) throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'SSLRequest where TLS is not offered');
      let r;
      try {
        r = parseHandshakeResponse(p.payload);
      } catch {
        throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'Bad handshake');
      }
      response = r;
      if (runtime.config.tls?.mode === 'require' && !isTls) throw new SwitchyardError(ErrorCodes.TLS_REQUIRED, 'Connections using insecure transport are prohibited (tls.mode: require)');
      auth = new ServerAuth({ password: runtime.password(r.user), nonce, secure: isTls });
      step = 'auth';
      return apply(auth.start(r.authPlugin, r.authResponse));
    }
    if (step === 'auth') return apply(auth!.next(p.payload));
    throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'Bad handshake');
  };

  /** One step of the authentication exchange: its packets, then wait, fetch the key pair, log in or refuse. */
  const apply = (a: ServerAuthStep): void => {
    for (const payload of a.send) send(payload);
    if (a.then === 'wait') return;
    if (a.then === 'keys') {
      // Only without TLS, and the same for unknown users: no client packet is due until the key is there.
      serverRsaKeys().then(
        (keys) => {
          if (done) return;
          try {
            apply(auth!.withKeys(keys));
          } catch (e) {
            fail(e);
          }
        },
        (e: unknown) => fail(new SwitchyardError(ErrorCodes.INTERNAL, `RSA key pair: ${(e as Error).message}`)),
      );
      return;
    }
    const r = response!;
    if (a.then === 'fail') {
      if (a.reason === 'unexpected-packet') throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'Bad handshake');
      throw new SwitchyardError(ErrorCodes.AUTH_FAILED, `Access denied for user '${r.user}'@'${address}' (using password: ${a.usedPassword ? 'YES' : 'NO'})`);
    }
    authSucceeded(address);
    step = 'backend';
    socket.removeListener('data', onData);
    socket.pause();
    void finishLogin(r);
  };

  /** TLS from here on; `rest` (the start of the ClientHello, if it came along) is given back to the socket first. */
  const upgrade = (rest: Buffer) => {
    socket.removeListener('data', onData);
    socket.pause();
    if (rest.length > 0) socket.unshift(rest);
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: ctx.tlsContext! });
    secure.on('error', (e) => {
      log.debug({ err: e.message }, 'client TLS error');
      secure.destroy();
    });
    secure.on('close', onClose);
    socket = secure;
    isTls = true;
    reader = new MysqlPacketReader({ maxMessageSize: LOGIN_MAX_PACKET });
    socket.on('data', onData);
  };

  const finishLogin = async (r: NonNullable<typeof response>) => {
    try {
      const info = await runtime.serverInfo();
      const clientCaps = (r.capabilities & advertised) >>> 0;
      const key: MysqlPoolKey = { user: r.user, capabilities: (BACKEND_BASE | (clientCaps & PASS_THROUGH)) & info.capabilities, charset: r.charset };
      key.capabilities >>>= 0;
      const database = clientCaps & Cap.CONNECT_WITH_DB && r.database ? r.database : null;
      await checkBackend(runtime, key, database);
      if (done) return;
      send(buildOk({ status: Status.AUTOCOMMIT }));
      done = true;
      handedOver = true;
      cleanup();
      const sessionLog = log.child({ session: connectionId, user: r.user });
      reader.setMaxMessageSize(runtime.limits.max_message_size);
      new MysqlSession(socket, runtime, reader, {
        connectionId, user: r.user, database, key, clientCaps, nonce, listener: ctx.listener, address,
      }, sessionLog);
      socket.once('close', () => ctx.release());
      socket.resume();
    } catch (e) {
      fail(e);
    }
  };

  const start = async () => {
    if (!ctx.admit()) throw new SwitchyardError(ErrorCodes.TOO_MANY_CLIENTS, 'Too many connections');
    admitted = true;
    runtime.clientConnections++;
    const info = await runtime.serverInfo();
    if (done) return;
    const tlsOn = ctx.tlsContext !== null && (runtime.config.tls?.mode ?? 'disable') !== 'disable';
    advertised = ((CLIENT_FACING_CAPS & ~PASS_THROUGH) | (CLIENT_FACING_CAPS & PASS_THROUGH & info.capabilities) | (tlsOn ? Cap.SSL : 0)) >>> 0;
    connectionId = runtime.register({ killQuery: async () => undefined, killConnection: async () => void socket.destroy() });
    const hs = buildHandshakeV10({
      serverVersion: info.serverVersion,
      connectionId,
      nonce,
      capabilities: advertised,
      charset: 45,
      status: Status.AUTOCOMMIT,
      authPlugin: 'mysql_native_password',
    });
    nextSeq = 0;
    send(hs);
    step = 'response';
  };

  socket.on('data', onData);
  raw.on('close', () => {
    if (!isTls) onClose();
  });
  raw.on('error', (e) => log.debug({ err: e.message }, 'client socket error during login'));
  start().catch(fail);
}
