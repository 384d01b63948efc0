import type net from 'node:net';
import type tls from 'node:tls';
import { PgStreamScanner } from '../../protocol/pg/scanner.js';
import { msg, parseParameterStatus, parseReadyForQuery } from '../../protocol/pg/index.js';
import type { PgBackendLogin } from './connect.js';
import type { SocketReads } from '../socket-reads.js';

/** Whoever currently borrowed the connection receives its traffic. */
export interface PgBackendOwner {
  /** Raw server bytes, to forward unchanged. Called before the frame events of the same chunk. */
  onBackendData(conn: PgBackendConn, chunk: Buffer): void;
  /** ReadyForQuery, COPY starts, ParameterStatus, ... seen in that chunk. */
  onBackendFrame(conn: PgBackendConn, type: number, payload: Buffer | null): void;
  onBackendClosed(conn: PgBackendConn, reason: string): void;
}

const T_READY = 0x5a; // 'Z'
const T_PARAM = 0x53; // 'S'
const WANTED = new Set([T_READY, T_PARAM]);

let nextId = 1;

/**
 * One logged-in server connection, owned by a pool and lent to one client
 * session at a time. It tracks only what pooling needs: the transaction status
 * of the last ReadyForQuery, the server's parameters, and whether it broke.
 */
export class PgBackendConn {
  readonly id = nextId++;
  readonly pid: number;
  readonly secret: number;
  readonly serverParams: Map<string, string>;
  txStatus: 'I' | 'T' | 'E' = 'I';
  broken = false;
  owner: PgBackendOwner | null = null;
  /** Something was written and its ReadyForQuery has not come back yet. */
  awaitingReady = false;
  /** performance.now() of the last byte written or received: how long the server has been silent. */
  lastIoAt = performance.now();
  /** Set by the pool that created it; called when the connection dies while idle. */
  onIdleClose: ((conn: PgBackendConn) => void) | null = null;
  private readonly scanner: PgStreamScanner;
  private readonly reads: SocketReads | null;
  private lastError = '';

  constructor(
    readonly node: string,
    readonly host: string,
    readonly port: number,
    readonly socket: net.Socket | tls.TLSSocket,
    login: PgBackendLogin,
  ) {
    this.pid = login.pid;
    this.secret = login.secret;
    this.serverParams = login.serverParams;
    this.scanner = new PgStreamScanner(WANTED, (type, payload) => this.onFrame(type, payload));
    // Bytes that followed the login's ReadyForQuery keep the scanner aligned with the stream.
    if (login.leftover.length > 0) this.scanner.feed(login.leftover);
    this.reads = login.reads;
    if (this.reads) {
      // Chunks read between the login's end and now (normally none) come first.
      for (const early of this.reads.listen((chunk) => this.onData(chunk))) this.onData(early);
    } else socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // 'close' always follows 'error', so only 'close' notifies anyone.
    socket.on('error', (e) => {
      this.broken = true;
      this.lastError = e.message;
    });
    socket.on('close', () => this.onClose());
    // The server never half-closes a healthy connection: after its FIN (a crash, a kill)
    // the socket may linger until 'close', and must not be lent meanwhile.
    socket.on('end', () => {
      this.broken = true;
    });
  }

  /** Attach a borrower; returns false when the connection is already unusable. */
  attach(owner: PgBackendOwner): boolean {
    if (this.broken) return false;
    this.owner = owner;
    return true;
  }

  detach(): void {
    this.owner = null;
  }

  write(data: Buffer): boolean {
    this.awaitingReady = true;
    this.lastIoAt = performance.now();
    return this.socket.write(data);
  }

  /**
   * The chunk being delivered stays referenced after its onBackendData call (a client write
   * that did not finish, bytes held back): the next read must not reuse its memory.
   */
  keepChunk(): void {
    this.reads?.keep();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Polite close: Terminate, then end the socket. */
  close(): void {
    if (this.socket.destroyed) return;
    this.broken = true;
    this.owner = null;
    this.onIdleClose = null;
    if (this.socket.writable) this.socket.end(msg.terminate());
    this.socket.destroySoon?.();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  destroy(): void {
    this.broken = true;
    this.owner = null;
    this.onIdleClose = null;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.lastIoAt = performance.now();
    this.owner?.onBackendData(this, chunk);
    this.scanner.feed(chunk);
  }

  private onFrame(type: number, payload: Buffer | null): void {
    if (payload) {
      if (type === T_READY) {
        this.txStatus = parseReadyForQuery(payload);
        this.awaitingReady = false;
      }
      else if (type === T_PARAM) {
        const p = parseParameterStatus(payload);
        this.serverParams.set(p.name, p.value);
      }
    }
    this.owner?.onBackendFrame(this, type, payload);
  }

  private onClose(): void {
    this.broken = true;
    const owner = this.owner;
    this.owner = null;
    if (owner) owner.onBackendClosed(this, this.lastError || 'connection closed by the server');
    else this.onIdleClose?.(this);
    this.onIdleClose = null;
  }
}
