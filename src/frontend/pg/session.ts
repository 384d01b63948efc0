import net from 'node:net';
import { ErrorCodes, SwitchyardError, isSwitchyardError, pgSqlState } from '../../errors.js';
import { PgFrameReader, msg, parseBindHeader, parseParse, parseQuery, type PgFrame } from '../../protocol/pg/index.js';
import type { PgBackendConn, PgBackendOwner } from '../../backend/pg/conn.js';
import type { Pool } from '../../pool/pool.js';
import type { Classification } from '../../sql/index.js';
import type { Logger } from '../../observability/logger.js';
import type { PgClusterRuntime, StartupParams } from '../../runtime/pg-cluster.js';
import { decideRoute } from './route.js';

type Socket = net.Socket;

// Frontend message types (client -> server).
const Q = 0x51; // Query
const P = 0x50; // Parse
const B = 0x42; // Bind
const S = 0x53; // Sync
const H = 0x48; // Flush
const F = 0x46; // FunctionCall
const X = 0x58; // Terminate
const COPY_DATA = 0x64; // 'd'
const COPY_DONE = 0x63; // 'c'
const COPY_FAIL = 0x66; // 'f'
// Backend message types (server -> client).
const READY = 0x5a; // 'Z'
const COPY_IN = 0x47; // 'G'
const COPY_OUT = 0x48; // 'H'
const COPY_BOTH = 0x57; // 'W'
const COPY_DONE_B = 0x63; // 'c'

/** Session effects that cannot be replayed on another connection: the session stays on one. */
const PINNING = new Set(['temp_table', 'listen', 'advisory_lock', 'cursor', 'sql_prepare', 'set', 'reset', 'discard', 'set_role', 'set_session_authorization', 'load', 'sql_execute', 'sql_deallocate']);

/** Message types a client may send after login; anything else is a protocol violation. */
const FRONTEND_TYPES = new Set([Q, P, B, S, H, F, X, COPY_DATA, COPY_DONE, COPY_FAIL, 0x44 /* D */, 0x45 /* E */, 0x43 /* C */]);

/** Queued client bytes above which the client socket is paused (backpressure). */
const MAX_QUEUED_BYTES = 1 << 20;

export interface PgSessionIdentity {
  user: string;
  database: string;
  params: StartupParams;
  pid: number;
  secret: number;
  listener: 'rw' | 'ro';
}

/**
 * The ready phase of one client connection: frames from the client are grouped
 * into batches (a simple Query, or extended-protocol messages up to Sync), each
 * batch is routed, and the batch's messages are forwarded to one borrowed
 * backend connection. Server bytes are forwarded unchanged. The connection goes
 * back to its pool at the ReadyForQuery that ends the last outstanding batch
 * when no transaction is open and the session is not pinned.
 *
 * Batches run one after the other: a batch that arrives while another is in
 * flight waits in `queue` until that one's ReadyForQuery. This keeps responses
 * in order when consecutive batches go to different nodes.
 */
export class PgSession implements PgBackendOwner {
  private readonly reader: PgFrameReader;
  private readonly queue: PgFrame[] = [];
  private queuedBytes = 0;
  private backend: PgBackendConn | null = null;
  private backendPool: Pool<PgBackendConn> | null = null;
  private backendRoute: 'primary' | 'replica' = 'primary';
  /** Messages of the current batch are being forwarded (no Sync/Query yet). */
  private batchOpen = false;
  /** Query/Sync/FunctionCall messages forwarded and not yet answered by ReadyForQuery. */
  private pendingSyncs = 0;
  private copyIn = false;
  private pinned = false;
  private acquiring = false;
  /** After a failed routing of an extended batch: drop messages until its Sync. */
  private discardUntilSync = false;
  private txStatus: 'I' | 'T' | 'E' = 'I';
  private closed = false;
  private batchStartedAt = 0;
  /** Named prepared statements: client name -> class, so a later Bind routes correctly. */
  private readonly statements = new Map<string, Classification['class']>();

  constructor(
    private readonly socket: Socket,
    private readonly runtime: PgClusterRuntime,
    private readonly id: PgSessionIdentity,
    private readonly log: Logger,
    initial: Buffer,
  ) {
    this.reader = new PgFrameReader({ maxMessageSize: runtime.limits.max_message_size });
    runtime.registerSession(id.pid, id.secret, this);
    socket.on('data', (chunk: Buffer) => this.onClientData(chunk));
    socket.on('drain', () => this.backend?.resume());
    socket.on('close', () => this.onClientClosed());
    socket.on('error', (e) => this.log.debug({ err: e.message }, 'client socket error'));
    if (initial.length > 0) this.onClientData(initial);
  }

  // ---- client side -------------------------------------------------------

  private onClientData(chunk: Buffer): void {
    if (this.closed) return;
    let frames: PgFrame[];
    try {
      frames = this.reader.push(chunk);
    } catch (e) {
      return this.fatal(e);
    }
    for (const f of frames) {
      if (!FRONTEND_TYPES.has(f.type)) {
        return this.fatal(new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, `invalid frontend message type ${f.type}`));
      }
      this.queue.push(f);
      this.queuedBytes += f.raw.length;
    }
    if (this.queuedBytes > MAX_QUEUED_BYTES) this.socket.pause();
    this.pump();
  }

  /** Moves queued client frames forward as far as the batch rules allow. */
  private pump(): void {
    const backend = this.backend;
    if (backend) backend.socket.cork();
    try {
      while (this.queue.length > 0 && !this.acquiring && !this.closed) {
        const frame = this.queue[0]!;
        const type = frame.type;
        if (type === X) return this.terminate();
        if (type === COPY_DATA || type === COPY_DONE || type === COPY_FAIL) {
          // COPY data flows only into a COPY in progress; otherwise it is ignored, as PostgreSQL does.
          if (this.copyIn && this.backend) this.backend.write(frame.raw);
          if (type !== COPY_DATA) this.copyIn = false;
          this.shift();
          continue;
        }
        if (this.discardUntilSync) {
          if (type === S) {
            this.discardUntilSync = false;
            this.socket.write(msg.readyForQuery(this.txStatus));
          }
          this.shift();
          continue;
        }
        if (!this.batchOpen) {
          // A new batch waits for the previous one's ReadyForQuery, so answers stay in order.
          if (this.pendingSyncs > 0 || this.copyIn) return;
          if (!this.backend) {
            if (type === S) {
              this.socket.write(msg.readyForQuery(this.txStatus));
              this.shift();
              continue;
            }
            if (type === H) {
              this.shift();
              continue;
            }
            this.startBatch(frame);
            return; // resumes from the acquire callback
          }
          this.batchOpen = true;
          this.batchStartedAt = performance.now();
          this.routeWithinHeldConnection(frame);
        } else if (type === P) {
          this.noteParse(frame);
        }
        this.forward(frame);
      }
    } finally {
      if (backend) backend.socket.uncork();
    }
  }

  private shift(): void {
    const f = this.queue.shift()!;
    this.queuedBytes -= f.raw.length;
    if (this.queuedBytes <= MAX_QUEUED_BYTES / 2 && this.socket.isPaused()) this.socket.resume();
  }

  private forward(frame: PgFrame): void {
    const type = frame.type;
    this.backend!.write(frame.raw);
    this.shift();
    if (type === Q || type === S || type === F) {
      this.pendingSyncs++;
      this.batchOpen = false;
    }
  }

  /** The held connection (transaction or pinned) serves the batch; only bookkeeping is needed. */
  private routeWithinHeldConnection(frame: PgFrame): void {
    const c = this.classOf(frame);
    if (frame.type === P) this.noteParse(frame);
    if (c) this.maybePin(c);
    this.runtime.counters.decision(c?.class ?? 'write', this.pinned ? 'pinned' : 'transaction');
    this.runtime.counters.query(this.backend!.node, this.backendRoute);
  }

  /** Classification of a batch's first message, when it carries SQL. */
  private classOf(frame: PgFrame): Classification | null {
    if (frame.type === Q) return this.runtime.classifier.classify(parseQuery(frame.payload));
    if (frame.type === P) return this.runtime.classifier.classify(parseParse(frame.payload).query);
    return null;
  }

  private noteParse(frame: PgFrame): void {
    const parsed = parseParse(frame.payload);
    if (parsed.name === '') return;
    this.statements.set(parsed.name, this.runtime.classifier.classify(parsed.query).class);
    // A named statement lives on one server connection: keep the session there.
    this.pin();
  }

  private maybePin(c: Classification): void {
    if (c.session?.some((e) => PINNING.has(e.kind) && !(e.kind === 'set' && e.local))) this.pin();
  }

  /**
   * Keep the session on its current connection for good. Only a primary
   * connection is kept on the read/write listener: a session pinned to a replica
   * could never write again. (State set inside a read-only transaction on a
   * replica therefore ends with that transaction.)
   */
  private pin(): void {
    if (this.backendRoute === 'replica' && this.id.listener === 'rw') return;
    this.pinned = true;
  }

  /** 1. classify the batch's first message, 2. route it, 3. borrow a connection, 4. resume pumping. */
  private startBatch(frame: PgFrame): void {
    let classification: Classification;
    if (frame.type === Q || frame.type === P) {
      classification = this.classOf(frame)!;
    } else if (frame.type === B) {
      const stmt = parseBindHeader(frame.payload).statement;
      const known = stmt === '' ? undefined : this.statements.get(stmt);
      classification = { class: known ?? 'write', reason: known ? 'read' : 'unknown', statements: 1, hints: {} } as Classification;
    } else {
      classification = { class: 'write', reason: 'unknown', statements: 1, hints: {} } as Classification;
    }
    if (frame.type === P && parseParse(frame.payload).name !== '') classification = { ...classification, class: 'write' };
    const isSimple = frame.type === Q || frame.type === F;
    this.acquiring = true;
    decideRoute(this.runtime, classification, this.id.listener)
      .then(async (decision) => {
        this.runtime.counters.decision(classification.class, decision.reason);
        const { conn, pool } = await this.runtime.acquire(decision.node, this.id.user, this.id.database, this.id.params);
        if (this.closed) {
          pool.release(conn);
          return;
        }
        if (!conn.attach(this)) {
          pool.discard(conn);
          throw new SwitchyardError(ErrorCodes.BACKEND_GONE, `connection to node ${decision.node} was lost`);
        }
        this.backend = conn;
        this.backendPool = pool;
        this.backendRoute = decision.target;
        this.runtime.counters.query(conn.node, decision.target);
        this.maybePin(classification);
        this.acquiring = false;
        this.batchOpen = true;
        this.batchStartedAt = performance.now();
        if (frame.type === P) this.noteParse(frame);
        const head = this.queue[0];
        if (head === frame) {
          this.backend.socket.cork();
          this.forward(frame);
          this.backend.socket.uncork();
        }
        this.pump();
      })
      .catch((err) => {
        this.acquiring = false;
        if (this.closed) return;
        this.sendError(err);
        if (isSimple) {
          this.shift();
          this.socket.write(msg.readyForQuery(this.txStatus));
        } else {
          this.discardUntilSync = true;
        }
        this.pump();
      });
  }

  // ---- server side (PgBackendOwner) -------------------------------------

  onBackendData(_conn: PgBackendConn, chunk: Buffer): void {
    if (!this.socket.write(chunk)) this.backend?.pause();
  }

  onBackendFrame(conn: PgBackendConn, type: number, _payload: Buffer | null): void {
    if (type === READY) {
      this.pendingSyncs = Math.max(0, this.pendingSyncs - 1);
      this.txStatus = conn.txStatus;
      this.copyIn = false;
      if (this.pendingSyncs === 0) {
        const seconds = (performance.now() - this.batchStartedAt) / 1000;
        (this.backendRoute === 'primary' ? this.runtime.counters.durationPrimary : this.runtime.counters.durationReplica).observe(seconds);
        if (this.txStatus === 'I' && !this.pinned && !this.batchOpen) this.releaseBackend();
      }
      this.pump();
    } else if (type === COPY_IN || type === COPY_BOTH) {
      this.copyIn = true;
      this.pump();
    } else if (type === COPY_OUT || type === COPY_DONE_B) {
      // Server-to-client COPY needs nothing from us: its bytes are forwarded like any others.
    }
  }

  onBackendClosed(conn: PgBackendConn, reason: string): void {
    this.log.warn({ node: conn.node, reason }, 'backend connection lost');
    this.runtime.counters.error(ErrorCodes.BACKEND_GONE);
    this.backendPool?.discard(conn);
    this.backend = null;
    this.backendPool = null;
    const err = new SwitchyardError(ErrorCodes.BACKEND_GONE, `connection to node ${conn.node} was lost: ${reason}`);
    // Every outstanding Query/Sync gets its error and ReadyForQuery; an open extended
    // batch is discarded up to its Sync. The session itself stays usable.
    const outstanding = this.pendingSyncs;
    this.pendingSyncs = 0;
    this.copyIn = false;
    this.pinned = false;
    this.statements.clear();
    this.txStatus = 'I';
    for (let i = 0; i < outstanding; i++) {
      this.sendError(err);
      this.socket.write(msg.readyForQuery('I'));
    }
    if (this.batchOpen) {
      this.batchOpen = false;
      if (outstanding === 0) this.sendError(err);
      this.discardUntilSync = true;
    }
    this.pump();
  }

  // ---- lifecycle ---------------------------------------------------------

  /** CancelRequest with this session's key: cancel the running query on its server, if any. */
  cancel(): void {
    const b = this.backend;
    if (!b || this.pendingSyncs === 0) return;
    const s = net.connect({ host: b.host, port: b.port });
    s.on('error', () => s.destroy());
    s.on('connect', () => s.end(msg.cancelRequest(b.pid, b.secret)));
    s.setTimeout(5000, () => s.destroy());
  }

  private releaseBackend(): void {
    const conn = this.backend;
    const pool = this.backendPool;
    this.backend = null;
    this.backendPool = null;
    if (!conn || !pool) return;
    conn.detach();
    conn.resume();
    pool.release(conn);
  }

  private terminate(): void {
    this.queue.length = 0;
    this.socket.end();
    this.onClientClosed();
  }

  /**
   * The client is gone. A connection it held must not go back dirty:
   *   1. a query still running is cancelled and the connection destroyed;
   *   2. an idle open transaction is rolled back, then the connection is returned;
   *   3. a pinned session's connection (temp tables, LISTEN, named statements) is destroyed;
   *   4. otherwise it is returned as is.
   */
  private onClientClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.runtime.unregisterSession(this.id.pid);
    this.runtime.clientConnections--;
    const conn = this.backend;
    const pool = this.backendPool;
    this.backend = null;
    this.backendPool = null;
    if (!conn || !pool) return;
    conn.detach();
    if (this.pendingSyncs > 0 || this.copyIn || this.batchOpen || this.pinned) {
      if (this.pendingSyncs > 0) {
        const s = net.connect({ host: conn.host, port: conn.port });
        s.on('error', () => s.destroy());
        s.on('connect', () => s.end(msg.cancelRequest(conn.pid, conn.secret)));
      }
      pool.discard(conn);
      conn.destroy();
    } else if (conn.txStatus !== 'I') {
      rollbackAndRelease(conn, pool);
    } else {
      pool.release(conn);
    }
  }

  private sendError(err: unknown): void {
    const code = isSwitchyardError(err) ? err.code : ErrorCodes.INTERNAL;
    const message = err instanceof Error ? err.message : String(err);
    if (!isSwitchyardError(err)) this.log.error({ err }, 'internal error in session');
    this.runtime.counters.error(code);
    this.socket.write(msg.errorResponse({ severity: 'ERROR', code: pgSqlState[code], message }));
  }

  /** A protocol violation from the client: FATAL 08P01 and close. */
  private fatal(err: unknown): void {
    const code = isSwitchyardError(err) ? err.code : ErrorCodes.PROTOCOL_VIOLATION;
    this.runtime.counters.error(code);
    const message = err instanceof Error ? err.message : String(err);
    this.socket.end(msg.errorResponse({ severity: 'FATAL', code: pgSqlState[code], message }));
    this.onClientClosed();
  }
}

/** Roll back an abandoned transaction, then return the connection (or drop it if that fails). */
function rollbackAndRelease(conn: PgBackendConn, pool: Pool<PgBackendConn>): void {
  const owner: PgBackendOwner = {
    onBackendData() {},
    onBackendFrame(c, type) {
      if (type !== READY) return;
      c.detach();
      if (c.txStatus === 'I') pool.release(c);
      else {
        pool.discard(c);
        c.destroy();
      }
    },
    onBackendClosed(c) {
      pool.discard(c);
    },
  };
  if (!conn.attach(owner)) {
    pool.discard(conn);
    return;
  }
  conn.resume();
  conn.write(msg.query('ROLLBACK'));
}
