import net from 'node:net';
import tls from 'node:tls';
import { randomInt } from 'node:crypto';
import { ErrorCodes, SwitchyardError, isSwitchyardError, pgSqlState } from '../../errors.js';
import { PgFrameReader, msg, parseStartupPacket, type PgFrame } from '../../protocol/pg/index.js';
import type { Logger } from '../../observability/logger.js';
import type { PgClusterRuntime, StartupParams } from '../../runtime/pg-cluster.js';
import { ClientAuthenticator } from './auth.js';
import { PgSession } from './session.js';

const PASSWORD_MESSAGE = 0x70; // 'p'

/**
 * Slows password guessing from one source address: the answer to the n-th
 * failed login in a row (n >= 2) from an address is held back
 * min(AUTH_DELAY_CAP_MS, AUTH_DELAY_BASE_MS * 2^(n-2)); the first failure is
 * answered at once so a typo costs nothing. A success, or AUTH_FAILURE_FORGET_MS
 * without a failure, forgets the address. The delay holds only the failing
 * connection (no event loop time), and it counts against nothing else: an
 * attacker opening many connections in parallel is bounded by
 * limits.max_client_connections and auth_timeout instead.
 */
export const AUTH_DELAY_BASE_MS = 100;
export const AUTH_DELAY_CAP_MS = 5000;
const AUTH_FAILURE_FORGET_MS = 10 * 60_000;
/** Bounded: an attacker with many addresses can only reset the table, never grow it. */
const AUTH_FAILURE_TABLE_MAX = 10_000;
const authFailures = new Map<string, { count: number; last: number }>();

/** Records a failed login from `address` and returns how long to hold back its answer (ms). */
export function authFailureDelay(address: string, now = Date.now()): number {
  let entry = authFailures.get(address);
  if (!entry || now - entry.last > AUTH_FAILURE_FORGET_MS) entry = { count: 0, last: now };
  entry.count++;
  entry.last = now;
  if (!authFailures.has(address) && authFailures.size >= AUTH_FAILURE_TABLE_MAX) authFailures.clear();
  authFailures.set(address, entry);
  if (entry.count < 2) return 0;
  return Math.min(AUTH_DELAY_CAP_MS, AUTH_DELAY_BASE_MS * 2 ** Math.min(entry.count - 2, 20));
}

/** A successful login from `address` ends its run of failures. */
export function authSucceeded(address: string): void {
  authFailures.delete(address);
}

export interface PgListenerContext {
  runtime: PgClusterRuntime;
  listener: 'rw' | 'ro';
  tlsContext: tls.SecureContext | null;
  log: Logger;
  /** Counts clients across all clusters for limits.max_client_connections. */
  admit(): boolean;
  /** Called unbound (it is a socket listener). */
  release(): void;
}

/**
 * Runs one client connection from its first byte to the ready phase:
 *   1. SSLRequest (TLS upgrade or 'N'), GSSENCRequest ('N'), CancelRequest;
 *   2. StartupMessage: protocol version, user, database, parameters;
 *   3. authentication (SCRAM-SHA-256) bounded by limits.auth_timeout;
 *   4. a backend login with the same user/database/parameters (proves the
 *      backend accepts them and yields the ParameterStatus set);
 *   5. AuthenticationOk, ParameterStatus..., BackendKeyData, ReadyForQuery;
 *   6. hand-over to PgSession.
 * Nothing reaches a backend before step 4.
 */
export function handlePgConnection(raw: net.Socket, ctx: PgListenerContext): void {
  const { runtime } = ctx;
  const log = ctx.log;
  let socket: net.Socket = raw;
  // A connection slot of limits.max_client_connections is taken at accept, not at the
  // StartupMessage: clients that send nothing or dribble bytes count until auth_timeout
  // closes them. One refused here is told so (53300) once its StartupMessage arrives.
  let holdsSlot = ctx.admit();
  /** Counted in runtime.clientConnections (from the StartupMessage on). */
  let counted = false;
  let done = false;
  let isTls = false;
  let reader = new PgFrameReader({ maxMessageSize: Math.min(runtime.limits.max_message_size, 1 << 20), startup: true });
  let auth: ClientAuthenticator | null = null;
  let identity: { user: string; database: string; params: StartupParams } | null = null;
  let authenticated = false;
  /** A failed login's answer is being held back (authFailureDelay). */
  let delaying = false;
  const address = raw.remoteAddress ?? 'unknown';

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
    if (holdsSlot) {
      holdsSlot = false;
      ctx.release();
    }
    if (counted) {
      counted = false;
      runtime.clientConnections--;
    }
  };
  const fail = (err: unknown) => {
    if (done) return;
    if (isSwitchyardError(err) && err.code === ErrorCodes.AUTH_FAILED && !delaying) {
      const wait = authFailureDelay(address);
      if (wait > 0) {
        // Hold the answer back; stop reading and stop the auth timer so nothing else answers first.
        delaying = true;
        cleanup();
        setTimeout(() => fail(err), wait).unref();
        return;
      }
    }
    const code = isSwitchyardError(err) ? err.code : ErrorCodes.INTERNAL;
    const message = err instanceof Error ? err.message : String(err);
    runtime.counters.error(code);
    log.debug({ code, message }, 'client login failed');
    if (socket.writable) socket.end(msg.errorResponse({ severity: 'FATAL', code: pgSqlState[code], message }));
    setTimeout(() => socket.destroy(), 2000).unref();
    onClose();
  };

  const onData = (chunk: Buffer) => {
    try {
      reader.feed(chunk);
    } catch (e) {
      return fail(e);
    }
    // One frame at a time: a frame may change how the next is read (TLS, startup -> typed
    // framing) or end the login, leaving the rest of the bytes to the session.
    while (!done && !authenticated) {
      const readerNow = reader;
      let frame: PgFrame | null;
      try {
        frame = readerNow.next();
        if (!frame) return;
        if (frame.type === 0) onStartupFrame(frame);
        else if (frame.type === PASSWORD_MESSAGE && auth) onPasswordFrame(frame);
        else throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, `unexpected message type 0x${frame.type.toString(16)} during authentication`);
      } catch (e) {
        return fail(e);
      }
      // A TLS upgrade replaced the reader: the old one's bytes were refused (see onStartupFrame).
      if (reader !== readerNow) return;
    }
  };

  const onTlsError = (e: Error) => {
    log.debug({ err: e.message }, 'client TLS error');
    socket.destroy();
  };

  const onStartupFrame = (frame: PgFrame) => {
    const packet = parseStartupPacket(frame.payload);
    switch (packet.kind) {
      case 'ssl': {
        const mode = runtime.config.tls?.mode ?? 'disable';
        if (isTls || !ctx.tlsContext || mode === 'disable') {
          socket.write(msg.sslNo());
          return;
        }
        // Bytes sent after SSLRequest but before the handshake would bypass TLS: refuse them.
        if (reader.buffered > 0) throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'unencrypted data after SSLRequest');
        socket.removeListener('data', onData);
        socket.write(msg.sslYes());
        const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: ctx.tlsContext });
        secure.on('error', onTlsError);
        secure.on('close', onClose);
        socket = secure;
        isTls = true;
        reader = new PgFrameReader({ maxMessageSize: Math.min(runtime.limits.max_message_size, 1 << 20), startup: true });
        socket.on('data', onData);
        return;
      }
      case 'gssenc':
        socket.write(msg.sslNo());
        return;
      case 'cancel':
        runtime.cancel(packet.pid, packet.secret);
        onClose(); // the login ends here: give the slot back now
        socket.end();
        return;
      case 'unsupported':
        throw new SwitchyardError(ErrorCodes.UNSUPPORTED, `unsupported frontend protocol ${packet.code >> 16}.${packet.code & 0xffff}: server supports 3.0 to 3.0`);
      case 'startup':
        return onStartup(packet.major, packet.minor, packet.params);
    }
  };

  const onStartup = (major: number, minor: number, all: Record<string, string>) => {
    if (major !== 3) throw new SwitchyardError(ErrorCodes.UNSUPPORTED, `unsupported frontend protocol ${major}.${minor}: server supports 3.0 to 3.0`);
    if (!holdsSlot) throw new SwitchyardError(ErrorCodes.TOO_MANY_CLIENTS, 'sorry, too many clients already');
    counted = true;
    runtime.clientConnections++;
    if (runtime.config.tls?.mode === 'require' && !isTls) throw new SwitchyardError(ErrorCodes.TLS_REQUIRED, 'this server requires SSL connections (tls.mode: require)');
    const user = all['user'];
    if (!user) throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'no PostgreSQL user name specified in startup packet');
    if (all['replication'] && all['replication'] !== 'false' && all['replication'] !== '0') {
      throw new SwitchyardError(ErrorCodes.UNSUPPORTED, 'replication connections are not supported through switchyard');
    }
    const params: StartupParams = {};
    const unrecognized: string[] = [];
    for (const [k, v] of Object.entries(all)) {
      if (k === 'user' || k === 'database') continue;
      if (k.startsWith('_pq_.')) unrecognized.push(k);
      else params[k] = v;
    }
    if (minor > 0 || unrecognized.length > 0) socket.write(msg.negotiateProtocolVersion(0, unrecognized));
    identity = { user, database: all['database'] || user, params };
    reader.setStartup(false);
    // Unknown users get SCRAM too, and fail it the same way (28P01) as a wrong password.
    const method = runtime.config.users.find((u) => u.name === user)?.auth ?? 'scram-sha-256';
    auth = new ClientAuthenticator(method, user, runtime.password(user));
    socket.write(auth.begin());
  };

  const onPasswordFrame = (frame: PgFrame) => {
    const step = auth!.next(frame.payload);
    if (!step.done) {
      socket.write(step.send);
      return;
    }
    // Authenticated: stop reading until the session takes over (step 6).
    authenticated = true;
    authSucceeded(address);
    socket.removeListener('data', onData);
    socket.pause();
    const authOk = step.send;
    void finishLogin(authOk);
  };

  const finishLogin = async (authOk: Buffer) => {
    const id = identity!;
    try {
      const params = await backendParameters(runtime, id.user, id.database, id.params);
      if (done) return;
      const pid = newPid(runtime);
      const secret = randomInt(-0x80000000, 0x7fffffff);
      const out: Buffer[] = [authOk];
      for (const [name, value] of params) out.push(msg.parameterStatus(name, value));
      out.push(msg.backendKeyData(pid, secret), msg.readyForQuery('I'));
      socket.write(Buffer.concat(out));
      done = true;
      cleanup();
      const rest = reader.takeRemainder();
      // Every closure of this function shares one V8 context (reader, authenticator, SCRAM
      // state, identity, timer): a listener left on the socket keeps all of it for the
      // session's life. Drop them, and give the socket only listeners that capture nothing
      // of it: 1.6 kB less per idle session (bench/MEMORY.md).
      raw.removeListener('close', onRawClose);
      raw.removeListener('error', onRawError);
      if (isTls) {
        socket.removeListener('close', onClose);
        socket.removeListener('error', onTlsError);
        raw.on('error', ignoreError);
      }
      // A literal, not `{ ...id }`: V8 gave every spread copy a hidden class of its own (0.25 kB).
      // The session gives the connection slot back when the socket closes (ctx.release).
      new PgSession(socket, runtime, { user: id.user, database: id.database, params: id.params, pid, secret, listener: ctx.listener }, log, rest, ctx.release);
      socket.resume();
    } catch (e) {
      fail(e);
    }
  };

  const onRawClose = () => {
    if (!isTls) onClose();
  };
  const onRawError = (e: Error) => log.debug({ err: e.message }, 'client socket error during login');
  socket.on('data', onData);
  raw.on('close', onRawClose);
  raw.on('error', onRawError);
}

/** The plain socket under a TLS session: its errors reach the session through the TLS socket. */
function ignoreError(): void {}

/**
 * The ParameterStatus set a client sees after login: a real backend's, from a
 * connection borrowed with the client's own user, database and parameters
 * (primary first, so server_version and is_superuser are the primary's).
 */
async function backendParameters(runtime: PgClusterRuntime, user: string, database: string, params: StartupParams): Promise<Map<string, string>> {
  const cached = runtime.cachedLoginParameters(user, database, params);
  if (cached) return cached;
  const snap = runtime.snapshot();
  const candidates = [...snap.nodes].filter((n) => n.up).sort((a, b) => Number(b.name === snap.primary) - Number(a.name === snap.primary));
  let lastError: unknown = new SwitchyardError(
    ErrorCodes.BACKEND_CONNECT_FAILED,
    `no node of cluster ${runtime.name} is reachable: every node fails its health checks (their errors are in switchyard's log)`,
  );
  for (const node of candidates) {
    try {
      const { conn, pool } = await runtime.acquire(node.name, user, database, params);
      const copy = new Map(conn.serverParams);
      pool.release(conn);
      runtime.rememberLoginParameters(node.name, user, database, params, copy);
      return copy;
    } catch (e) {
      lastError = e;
      // Authentication problems are the same on every node: report them at once.
      if (isSwitchyardError(e) && e.code === ErrorCodes.BACKEND_AUTH_FAILED) break;
    }
  }
  throw lastError;
}

function newPid(runtime: PgClusterRuntime): number {
  for (;;) {
    const pid = randomInt(1, 0x7fffffff);
    if (!runtime.hasSessionPid(pid)) return pid;
  }
}
