import net from 'node:net';
import tls from 'node:tls';
import { ErrorCodes, SwitchyardError } from '../../errors.js';
import {
  PgFrameReader,
  ScramClient,
  md5Password,
  msg,
  parseAuthRequest,
  parseBackendKeyData,
  parseErrorOrNotice,
  parseParameterStatus,
  parseReadyForQuery,
} from '../../protocol/pg/index.js';
import type { BackendTlsConfig } from '../../config/types.js';
import { backendTlsOptions } from '../tls-options.js';
import { SocketReads } from '../socket-reads.js';

export interface PgBackendTarget {
  node: string;
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** Extra startup parameters (application_name, client_encoding, ...). */
  params?: Record<string, string>;
  tls: BackendTlsConfig;
  connectTimeoutMs: number;
}

export interface PgBackendLogin {
  socket: net.Socket | tls.TLSSocket;
  serverParams: Map<string, string>;
  pid: number;
  secret: number;
  /** Bytes the server sent after ReadyForQuery in the same chunk (normally none). */
  leftover: Buffer;
  /** Plain TCP: the socket is read through `onread` (no 'data' events); TLS: null. */
  reads: SocketReads | null;
}

/**
 * Opens a connection to one node and logs in, following the server's lead:
 *   1. TCP connect (bounded by connectTimeoutMs for the whole login);
 *   2. SSLRequest and TLS upgrade when backend_tls asks for it;
 *   3. StartupMessage, then whatever authentication the server requests
 *      (trust, cleartext, MD5, SCRAM-SHA-256);
 *   4. collect ParameterStatus and BackendKeyData until ReadyForQuery.
 * Rejects with BACKEND_CONNECT_FAILED, BACKEND_AUTH_FAILED or the server's own
 * error (message and SQLSTATE kept in the error's cause).
 */
export async function connectPgBackend(target: PgBackendTarget): Promise<PgBackendLogin> {
  // Without TLS the socket is read with `onread` for good (see SocketReads); TLS needs 'data'.
  const reads = target.tls.mode === 'disable' ? new SocketReads() : null;
  const socket = reads ? net.connect({ host: target.host, port: target.port, onread: reads.options() }) : net.connect({ host: target.host, port: target.port });
  socket.setNoDelay(true);
  // One deadline for the whole login: destroying the socket fails whichever step is waiting.
  const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${target.connectTimeoutMs}ms`)), target.connectTimeoutMs);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', (e) => reject(connectError(target, e.message)));
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        resolve();
      });
    });
    const stream = target.tls.mode === 'disable' ? socket : await negotiateTls(socket, target);
    return await startupAndAuth(stream, target, reads);
  } catch (err) {
    socket.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

function negotiateTls(socket: net.Socket, target: PgBackendTarget): Promise<net.Socket | tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    socket.write(msg.sslRequest());
    socket.once('error', (e) => reject(connectError(target, e.message)));
    socket.once('data', (d: Buffer) => {
      socket.removeAllListeners('error');
      const answer = String.fromCharCode(d[0] ?? 0);
      if (answer === 'N') {
        if (target.tls.mode === 'prefer') return resolve(socket);
        return reject(connectError(target, 'the server does not support TLS but backend_tls requires it'));
      }
      if (answer !== 'S' || d.length !== 1) return reject(connectError(target, 'unexpected answer to SSLRequest'));
      let options: tls.ConnectionOptions;
      try {
        options = backendTlsOptions(socket, target.host, target.tls);
      } catch (e) {
        return reject(connectError(target, `cannot read backend_tls.ca: ${(e as Error).message}`));
      }
      const secure = tls.connect(options);
      secure.once('secureConnect', () => {
        secure.removeAllListeners('error');
        resolve(secure);
      });
      secure.once('error', (e) => reject(connectError(target, `TLS: ${e.message}`)));
    });
  });
}

function startupAndAuth(socket: net.Socket | tls.TLSSocket, target: PgBackendTarget, reads: SocketReads | null): Promise<PgBackendLogin> {
  return new Promise((resolve, reject) => {
    const reader = new PgFrameReader({ maxMessageSize: 1 << 20 });
    const serverParams = new Map<string, string>();
    let pid = 0;
    let secret = 0;
    let scram: ScramClient | null = null;
    const finish = (err: Error | null, login?: PgBackendLogin) => {
      if (reads) reads.listen(null);
      else socket.removeListener('data', onData);
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
      if (err) reject(err);
      else resolve(login!);
    };
    const onError = (e: Error) => finish(connectError(target, e.message));
    const onClose = () => finish(connectError(target, 'the server closed the connection during login'));
    const onData = (chunk: Buffer) => {
      try {
        reader.feed(chunk);
      } catch (e) {
        return finish(connectError(target, `bad data from server: ${(e as Error).message}`));
      }
      // Frame by frame, so whatever follows ReadyForQuery stays in the reader as `leftover`.
      for (;;) {
        let frame;
        try {
          frame = reader.next();
        } catch (e) {
          return finish(connectError(target, `bad data from server: ${(e as Error).message}`));
        }
        if (!frame) return;
        const type = String.fromCharCode(frame.type);
        try {
          if (type === 'R') {
            const req = parseAuthRequest(frame.payload);
            switch (req.type) {
              case 'ok':
                break;
              case 'cleartext':
                socket.write(msg.passwordMessage(target.password));
                break;
              case 'md5':
                socket.write(msg.passwordMessage(md5Password(target.user, target.password, req.salt)));
                break;
              case 'sasl':
                if (!req.mechanisms.includes('SCRAM-SHA-256')) throw authError(target, `unsupported SASL mechanisms ${req.mechanisms.join(',')}`);
                scram = new ScramClient(target.user, target.password);
                socket.write(msg.saslInitialResponse('SCRAM-SHA-256', scram.clientFirstMessage()));
                break;
              case 'sasl-continue':
                if (!scram) throw authError(target, 'SASLContinue without SASL');
                socket.write(msg.saslResponse(scram.handleServerFirst(req.data.toString('utf8'))));
                break;
              case 'sasl-final':
                if (!scram) throw authError(target, 'SASLFinal without SASL');
                scram.verifyServerFinal(req.data.toString('utf8'));
                break;
              default:
                throw authError(target, `unsupported authentication request ${req.code}`);
            }
          } else if (type === 'S') {
            const p = parseParameterStatus(frame.payload);
            serverParams.set(p.name, p.value);
          } else if (type === 'K') {
            ({ pid, secret } = parseBackendKeyData(frame.payload));
          } else if (type === 'E') {
            const e = parseErrorOrNotice(frame.payload);
            const code = e.code.startsWith('28') ? ErrorCodes.BACKEND_AUTH_FAILED : ErrorCodes.BACKEND_CONNECT_FAILED;
            throw new SwitchyardError(code, `node ${target.node}: ${e.message}`, { cause: e });
          } else if (type === 'Z') {
            parseReadyForQuery(frame.payload);
            return finish(null, { socket, serverParams, pid, secret, leftover: reader.takeRemainder(), reads });
          }
          // NoticeResponse and NegotiateProtocolVersion during login are ignored.
        } catch (e) {
          return finish(e instanceof SwitchyardError ? e : authError(target, (e as Error).message));
        }
      }
    };
    // A login chunk is copied: the reader may keep part of it, and the read buffer is reused.
    if (reads) reads.listen((chunk) => onData(Buffer.from(chunk)));
    else socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.write(msg.startupMessage({ user: target.user, database: target.database, ...target.params }));
  });
}

function connectError(target: PgBackendTarget, why: string): SwitchyardError {
  return new SwitchyardError(ErrorCodes.BACKEND_CONNECT_FAILED, `node ${target.node} (${target.host}:${target.port}): ${why}`);
}

function authError(target: PgBackendTarget, why: string): SwitchyardError {
  return new SwitchyardError(ErrorCodes.BACKEND_AUTH_FAILED, `login to node ${target.node} as ${target.user} failed: ${why}`);
}
