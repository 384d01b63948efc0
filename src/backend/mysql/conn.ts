import type { Socket } from 'node:net';
import { ErrorCodes, SwitchyardError } from '../../errors.js';
import {
  Cap, Com, EOF_HEADER, MysqlResponseScanner, OK_HEADER, Status, framePacket, isEof, parseEof, parseOk,
  type MysqlPacket, type MysqlPacketReader, type ResponseKind,
} from '../../protocol/mysql/index.js';
import type { MysqlBackendSocket } from './connect.js';
import type { SocketReads } from '../socket-reads.js';

/** Receives the packets of one response as they arrive. */
export interface MysqlResponseSink {
  /** One logical packet of the response (views into the received chunk: use or copy before returning). */
  packet(p: MysqlPacket): void;
  /**
   * The end of one received chunk's packets: write out what was gathered. Returns true when
   * some packet's bytes are still referenced afterwards (a client write that did not finish,
   * collected packets): the connection's read buffer must then not be reused (SocketReads).
   */
  flush(): boolean;
  /** The server asked for a LOCAL INFILE file: the client's packets go to the server next. */
  localInfile?(): void;
}

/** How a response ended. */
export interface ResponseEnd {
  /** Final server status flags; null after an ERR. */
  status: number | null;
  error: boolean;
  /** Warnings of the final OK/EOF (0 after an ERR). */
  warnings: number;
  /** The final packet's payload (the ERR, for instance). */
  last: Buffer;
}

interface Pending {
  kind: ResponseKind;
  sink: MysqlResponseSink | null;
  resolve(end: ResponseEnd): void;
  reject(err: Error): void;
}

/** A server-side prepared statement on one connection. */
export interface BackendStatement {
  id: number;
  params: number;
  columns: number;
}

let nextId = 1;

/**
 * One logged-in MySQL/MariaDB server connection, owned by a pool and lent to
 * one client session at a time. Commands are written by the borrower; the
 * answers are framed once and walked by a scanner (no row is decoded), each
 * packet going to the sink of the oldest outstanding request. Several requests
 * may be outstanding (the server answers pipelined commands in order).
 *
 * It also carries the session-visible state the borrower must bring in line
 * (current database, settings, prepared statements): sessions compare and
 * update it, the connection itself never interprets SQL.
 */
export class MysqlBackendConn {
  readonly id = nextId++;
  readonly socket: Socket;
  readonly threadId: number;
  readonly capabilities: number;
  /** Last status flags the server reported (AUTOCOMMIT after login). */
  status: number;
  broken = false;
  /** Current database (null: none selected since login). */
  db: string | null = null;
  /** Session settings as `name -> value` (SET SESSION), in the order they were made. */
  settings = new Map<string, string>();
  /** The last SET NAMES / CHARACTER SET statement run, or null (the login character set). */
  names: string | null = null;
  /** A statement with session effects failed: what it left is unknown, so the connection is not reused. */
  dirty = false;
  /** Prepared statements by (database, text), least recently used first. */
  readonly prepared = new Map<string, BackendStatement>();
  /** Set by the pool: called when the connection dies while nobody holds it. */
  onIdleClose: ((conn: MysqlBackendConn) => void) | null = null;
  /** Set by the borrower: called when the connection dies while held. */
  onLost: ((conn: MysqlBackendConn, reason: string) => void) | null = null;
  private readonly reader: MysqlPacketReader;
  private readonly scanner: MysqlResponseScanner;
  private readonly pending: Pending[] = [];
  private readonly reads: SocketReads | null;
  private lastError = '';

  constructor(
    readonly node: string,
    readonly host: string,
    readonly port: number,
    login: MysqlBackendSocket,
  ) {
    this.socket = login.socket;
    this.reader = login.reader;
    this.threadId = login.threadId;
    this.capabilities = login.capabilities;
    this.status = login.status;
    this.scanner = new MysqlResponseScanner((login.capabilities & Cap.DEPRECATE_EOF) !== 0);
    this.reads = login.reads;
    if (this.reads) {
      // Chunks read between the login's end and now (normally none) come first.
      for (const early of this.reads.listen((chunk) => this.onData(chunk))) this.onData(early);
    } else this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (e) => {
      this.broken = true;
      this.lastError = e.message;
    });
    this.socket.on('close', () => this.onClose());
  }

  /** performance.now() of the last command written or byte received: how long the server has been silent (runtime/hung-cut.ts). */
  lastIoAt = performance.now();

  /** Requests written and not yet fully answered. */
  get busy(): boolean {
    return this.pending.length > 0;
  }

  /**
   * Writes a command (already framed) and resolves when its whole response has
   * arrived; `sink` sees every packet of it (null: the answer is swallowed).
   */
  request(bytes: Buffer, kind: ResponseKind, sink: MysqlResponseSink | null): Promise<ResponseEnd> {
    if (this.broken) return Promise.reject(new SwitchyardError(ErrorCodes.BACKEND_GONE, `connection to node ${this.node} was lost`));
    return new Promise((resolve, reject) => {
      this.pending.push({ kind, sink, resolve, reject });
      if (this.pending.length === 1) this.scanner.begin(kind);
      this.lastIoAt = performance.now();
      this.socket.write(bytes);
    });
  }

  /** One command payload (sequence id 0) with its response. */
  command(payload: Buffer, kind: ResponseKind = 'result', sink: MysqlResponseSink | null = null): Promise<ResponseEnd> {
    return this.request(framePacket(payload, 0).bytes, kind, sink);
  }

  /** Bytes with no answer of their own (LOCAL INFILE data, COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA). */
  write(bytes: Buffer): void {
    if (!this.broken) this.socket.write(bytes);
  }

  /** COM_STMT_CLOSE for a server statement (no answer). */
  closeStatement(id: number): void {
    const p = Buffer.alloc(5);
    p[0] = Com.STMT_CLOSE;
    p.writeUInt32LE(id >>> 0, 1);
    this.write(framePacket(p, 0).bytes);
  }

  /**
   * Ends what a client left open: ROLLBACK, then autocommit back on (both
   * pipelined). True when the server then reports no transaction and autocommit on.
   */
  async rollbackAndAutocommit(): Promise<boolean> {
    try {
      const [a, b] = await Promise.all([
        this.command(Buffer.from('\x03ROLLBACK', 'latin1')),
        this.command(Buffer.from('\x03SET autocommit=1', 'latin1')),
      ]);
      return !a.error && !b.error && (this.status & Status.IN_TRANS) === 0 && (this.status & Status.AUTOCOMMIT) !== 0;
    } catch {
      return false;
    }
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Polite close: COM_QUIT, then end the socket. */
  close(): void {
    if (this.socket.destroyed) return;
    this.broken = true;
    this.onIdleClose = null;
    this.onLost = null;
    if (this.socket.writable) this.socket.end(framePacket(Buffer.from([Com.QUIT]), 0).bytes);
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  destroy(): void {
    this.broken = true;
    this.onIdleClose = null;
    this.onLost = null;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.lastIoAt = performance.now();
    let packets: MysqlPacket[];
    try {
      packets = this.reader.push(chunk);
    } catch (e) {
      this.lastError = (e as Error).message;
      this.socket.destroy();
      return;
    }
    // A partial packet stays in the reader as a view of this chunk.
    let kept = this.reader.buffered > 0;
    let sink: MysqlResponseSink | null = null;
    for (const p of packets) {
      const head = this.pending[0];
      if (!head) {
        // The server spoke out of turn (e.g. an ERR before closing an idle connection): it is unusable.
        this.lastError = 'unexpected packet from the server';
        this.socket.destroy();
        return;
      }
      let ev;
      try {
        ev = this.scanner.nextPacket(p);
      } catch (e) {
        this.lastError = (e as Error).message;
        this.socket.destroy();
        return;
      }
      if (head.sink !== sink) {
        if (sink?.flush()) kept = true;
        sink = head.sink;
      }
      head.sink?.packet(p);
      if (ev.kind === 'local_infile') {
        if (sink?.flush()) kept = true;
        sink = null;
        head.sink?.localInfile?.();
      } else if (ev.kind === 'done') {
        if (sink?.flush()) kept = true;
        sink = null;
        this.pending.shift();
        if (ev.status !== null) this.status = ev.status;
        const next = this.pending[0];
        if (next) this.scanner.begin(next.kind);
        // Whoever awaits the end reads `last` later: a copy when the read buffer is reused.
        const last = this.reads ? Buffer.from(p.payload) : p.payload;
        head.resolve({ status: ev.status, error: ev.error, warnings: ev.error ? 0 : warningsOf(last), last });
      }
    }
    if (sink?.flush()) kept = true;
    if (kept) this.reads?.keep();
  }

  private onClose(): void {
    this.broken = true;
    const reason = this.lastError || 'connection closed by the server';
    const err = new SwitchyardError(ErrorCodes.BACKEND_GONE, `connection to node ${this.node} was lost: ${reason}`);
    for (const p of this.pending.splice(0)) p.reject(err);
    const lost = this.onLost;
    this.onLost = null;
    if (lost) lost(this, reason);
    else this.onIdleClose?.(this);
    this.onIdleClose = null;
  }
}

/** Warning count of a final OK or EOF packet (0 when it is neither). */
function warningsOf(payload: Buffer): number {
  try {
    if (isEof(payload)) return parseEof(payload).warnings;
    if (payload[0] === OK_HEADER || payload[0] === EOF_HEADER) return parseOk(payload).warnings;
  } catch {
    // A packet the scanner accepted as final but too short for warnings: none to report.
  }
  return 0;
}
