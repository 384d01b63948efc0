import net from 'node:net';
import { ErrorCodes, SwitchyardError, isSwitchyardError, pgSqlState } from '../../errors.js';
import { PgFrameReader, msg, type PgFrame } from '../../protocol/pg/index.js';
import type { PgBackendConn, PgBackendOwner } from '../../backend/pg/conn.js';
import type { Pool } from '../../pool/pool.js';
import type { Classification, SessionEffect } from '../../sql/index.js';
import type { Logger } from '../../observability/logger.js';
import type { PgClusterRuntime, StartupParams } from '../../runtime/pg-cluster.js';
import { decideRoute, routeNow, type RoutedTo } from './route.js';
import { causalOf } from '../causal.js';
import { replicaEligibility } from '../../routing/eligibility.js';
import { ResponseFilter } from './response-filter.js';
import { SessionSettings, connState, effectVerdict, routingClass, type ClientStatement } from './session-state.js';
import { BatchTranslator, classifySegment } from './translate.js';
import { idleSweeper, type IdleHandle, type IdleWatched } from '../idle-timer.js';

type Socket = net.Socket;

/** The session a client socket belongs to, read by the shared socket listeners (PgSession.onSocket*). */
const SESSION = Symbol('switchyard.pgSession');
type SessionSocket = Socket & { [SESSION]: PgSession };

// Frontend message types (client -> server).
const Q = 0x51; // Query
const P = 0x50; // Parse
const B = 0x42; // Bind
const S = 0x53; // Sync
const H = 0x48; // Flush
const E = 0x45; // Execute
const F = 0x46; // FunctionCall
const X = 0x58; // Terminate
const COPY_DATA = 0x64; // 'd'
const COPY_DONE = 0x63; // 'c'
const COPY_FAIL = 0x66; // 'f'
// Backend message types (server -> client).
const READY = 0x5a; // 'Z'
const COPY_IN = 0x47; // 'G'
const COPY_BOTH = 0x57; // 'W'

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

/** An autocommit read that may run again elsewhere if its connection dies before answering. */
interface RetryableBatch {
  frames: PgFrame[];
  node: string;
  answered: boolean;
}

/**
 * The ready phase of one client connection: frames from the client are grouped
 * into batches (a simple Query, or extended-protocol messages up to Sync), each
 * batch is routed by the most demanding of its statements, and its messages
 * are forwarded to one borrowed backend connection, translated where the
 * session's state requires (named statements, settings). The connection goes
 * back to its pool at the ReadyForQuery that ends the last outstanding batch
 * when no transaction is open and the session is not pinned.
 *
 * Batches run one after the other: a batch that arrives while another is in
 * flight waits in `queue` until that one's ReadyForQuery, so answers stay in
 * the order the client sent, even when consecutive batches go to different nodes.
 */
export class PgSession implements PgBackendOwner, IdleWatched {
  private readonly reader: PgFrameReader;
  private readonly queue: PgFrame[] = [];
  private queuedBytes = 0;
  private backend: PgBackendConn | null = null;
  private backendPool: Pool<PgBackendConn> | null = null;
  private backendRoute: 'primary' | 'replica' = 'primary';
  /** Made by the first batch (runOn): a session that never ran a statement needs none. */
  private filter: ResponseFilter | null = null;
  private translator: BatchTranslator | null = null;
  /** Messages of the current batch are being forwarded (no Sync/Query yet). */
  private batchOpen = false;
  /**
   * The last message forwarded in the open batch was a Flush: the next messages start a
   * new segment of the same batch, whose session effects are classified when it arrives.
   */
  private afterFlush = false;
  /** A segment after a Flush was refused (see refuseRestOfBatch): drop messages, forward the Sync. */
  private skipToSync = false;
  /** Query/Sync/FunctionCall messages forwarded and not yet answered by ReadyForQuery. */
  private pendingSyncs = 0;
  private copyIn = false;
  /** COPY data waits for the server's socket to drain (see blockCopyUntilDrained). */
  private copyBlocked = false;
  private pinned = false;
  private acquiring = false;
  /** After a failed routing of an extended batch: drop messages until its Sync. */
  private discardUntilSync = false;
  private txStatus: 'I' | 'T' | 'E' = 'I';
  private closed = false;
  private batchStartedAt = 0;
  private batchClass: Classification['class'] = 'write';
  /** Named prepared statements of the client, by its names (created on first use: most sessions never name one). */
  private namedStatements: Map<string, ClientStatement> | null = null;
  /** The last unnamed statement's classification (a Bind may come in a later batch). */
  unnamedClassification: Classification | null = null;
  private readonly settings = new SessionSettings();
  /** Settings changes of the batch in flight, kept if it ends without error. */
  private pendingEffects: SessionEffect[] = [];
  private retry: RetryableBatch | null = null;
  private retried = false;
  /** The replica a retried read must not go back to. */
  private avoidReplica: string | null = null;
  /** The open transaction's connection died while the client was idle: its next batch fails. */
  private lostTransaction: SwitchyardError | null = null;
  /** pool.mode: session: the idle connections this client keeps, by route. */
  private held: Map<'primary' | 'replica', { conn: PgBackendConn; pool: Pool<PgBackendConn> }> | null = null;
  /** Server bytes of a retryable read not yet forwarded (see onBackendData). */
  private heldBack: Buffer | null = null;
  /** limits.client_idle_timeout (src/frontend/idle-timer.ts). */
  private readonly idle: IdleHandle;
  /** The session's child logger, made on its first message: a pino child costs every idle session memory. */
  private sessionLog: Logger | null = null;

  /*
   * Per-session memory (bench/MEMORY.md): 10,000 idle sessions must cost <= 8 kB each, so an
   * idle session allocates nothing it does not need yet (named statements, held connections,
   * the child logger), and the socket gets shared listeners (static methods below) instead of
   * four closures over this constructor's scope.
   */
  constructor(
    private readonly socket: Socket,
    private readonly runtime: PgClusterRuntime,
    private readonly id: PgSessionIdentity,
    /** The listener's logger; the session's own child is made from it on first use. */
    private readonly parentLog: Logger,
    initial: Buffer,
    /**
     * Called once when the client socket has closed (after the session's own cleanup). One
     * 'close' listener less: a third one grows the socket's listener array to 19 slots (0.2 kB).
     */
    private readonly onSocketClosed: (() => void) | null = null,
  ) {
    this.reader = new PgFrameReader({ maxMessageSize: runtime.limits.max_message_size });
    runtime.registerSession(id.pid, id.secret, this);
    this.idle = idleSweeper.watch(this);
    (socket as SessionSocket)[SESSION] = this;
    socket.on('data', PgSession.onSocketData);
    socket.on('drain', PgSession.onSocketDrain);
    socket.on('close', PgSession.onSocketClose);
    socket.on('error', PgSession.onSocketError);
    if (initial.length > 0) this.onClientData(initial);
  }

  private static onSocketData(this: Socket, chunk: Buffer): void {
    (this as SessionSocket)[SESSION].onClientData(chunk);
  }
  private static onSocketDrain(this: Socket): void {
    (this as SessionSocket)[SESSION].backend?.resume();
  }
  private static onSocketClose(this: Socket): void {
    const session = (this as SessionSocket)[SESSION];
    session.onClientClosed();
    session.onSocketClosed?.();
  }
  private static onSocketError(this: Socket, e: Error): void {
    (this as SessionSocket)[SESSION].log.debug({ err: e.message }, 'client socket error');
  }

  private get log(): Logger {
    return (this.sessionLog ??= this.parentLog.child({ session: this.id.pid, user: this.id.user }));
  }

  /** Named prepared statements of the client, by its names (the translator's StatementOwner). */
  get statements(): Map<string, ClientStatement> {
    return (this.namedStatements ??= new Map());
  }

  // ---- limits.client_idle_timeout (IdleWatched) --------------------------

  timeoutMs(): number {
    return this.runtime.limits.client_idle_timeout;
  }

  isIdle(): boolean {
    return this.queue.length === 0 && this.pendingSyncs === 0 && !this.acquiring && !this.batchOpen && !this.copyIn && !this.discardUntilSync;
  }

  expire(idleMs: number): void {
    this.expireIdle(idleMs);
  }

  get isPinned(): boolean {
    return this.pinned;
  }

  // ---- client side -------------------------------------------------------

  private onClientData(chunk: Buffer): void {
    if (this.closed) return;
    this.idle.touch();
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
    try {
      this.pump();
    } catch (e) {
      this.fatal(e);
    }
  }

  /**
   * Moves queued client frames forward as far as the batch rules allow. A
   * malformed client message (e.g. a Parse without its query string) throws
   * from the parsers; pump() runs from promise callbacks and backend socket
   * events too, where a throw would be an unhandled rejection or crash the
   * process and leave the borrowed connection out of its pool: end the session.
   */
  private pump(): void {
    try {
      this.pumpFrames();
    } catch (e) {
      this.fatal(e);
    }
  }

  private pumpFrames(): void {
    const backend = this.backend;
    if (backend) backend.socket.cork();
    try {
      while (this.queue.length > 0 && !this.acquiring && !this.closed && !this.copyBlocked) {
        const frame = this.queue[0]!;
        const type = frame.type;
        if (type === X) return this.terminate();
        if (type === COPY_DATA || type === COPY_DONE || type === COPY_FAIL) {
          // COPY data flows only into a COPY in progress; otherwise it is ignored, as PostgreSQL does.
          const conn = this.copyIn ? this.backend : null;
          if (type !== COPY_DATA) this.copyIn = false;
          this.shift();
          if (conn && !conn.write(frame.raw)) this.blockCopyUntilDrained(conn);
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
        if (this.skipToSync) {
          if (type !== S) {
            this.shift();
            continue;
          }
          this.skipToSync = false; // the Sync goes to the server: it ends the batch there
        }
        if (!this.batchOpen) {
          // A new batch waits for the previous one's ReadyForQuery, so answers stay in order.
          if (this.pendingSyncs > 0 || this.copyIn) return;
          if (!this.backend && (type === S || type === H)) {
            if (type === S) this.socket.write(msg.readyForQuery(this.txStatus));
            this.shift();
            continue;
          }
          const segment = this.segmentAtHead();
          if (segment === null) return; // wait for the rest of the batch
          if (this.lostTransaction) {
            this.failBatch(this.lostTransaction, segment[0]!);
            this.lostTransaction = null;
            continue;
          }
          const last = segment[segment.length - 1]!.type;
          // A segment that ends at a Flush is not the whole batch: what follows, up to the Sync,
          // runs in the same implicit transaction on the same connection (see flushRoutesAsUnsure).
          const incomplete = (segment.length === this.queue.length && !endsSegment(last)) || (last === H && this.id.listener === 'rw' && segment.some((f) => f.type === E));
          const classification = classifySegment(this, segment, this.runtime.classifier, incomplete);
          if (type === Q && this.answerDeallocate(classification)) {
            this.shift();
            continue;
          }
          if (!this.backend) {
            if (this.startBatch(segment, routingClass(classification, this.id.listener, this.txStatus))) continue; // failed at once: next batch
            return; // forwarded (and pumped) synchronously, or resumes from the acquire callback
          }
          this.openBatch(classification);
          this.runtime.counters.decision(classification.class, this.pinned ? 'pinned' : 'transaction');
          this.runtime.counters.query(this.backend.node, this.backendRoute);
        } else if (this.afterFlush) {
          // The next segment of a batch already under way (after a Flush): it runs where the
          // batch runs; only its session effects (settings to record, state that pins) count.
          const segment = this.segmentAtHead();
          if (segment === null) return; // wait for the rest of the segment
          this.afterFlush = false;
          const last = segment[segment.length - 1]!.type;
          // Outside a transaction block, portals live until the Sync: one that is executed here was bound earlier in this batch.
          const c = classifySegment(this, segment, this.runtime.classifier, segment.length === this.queue.length && !endsSegment(last), this.txStatus === 'I');
          if (this.backendRoute === 'replica' && this.id.listener === 'rw' && this.txStatus === 'I' && routingClass(c, 'rw', this.txStatus).class !== 'read') {
            this.refuseRestOfBatch();
            continue;
          }
          this.noteEffects(c);
        }
        this.forward(frame);
      }
    } finally {
      if (backend) backend.socket.uncork();
    }
  }

  /**
   * The frames of the batch at the head of the queue up to its first Sync or
   * Flush (a Query or FunctionCall is a batch by itself), or null while that
   * end has not arrived and the queue is still small: the batch is routed by
   * all of its statements, so a write later in a pipeline is not sent to a replica.
   */
  private segmentAtHead(): PgFrame[] | null {
    const head = this.queue[0]!;
    if (head.type === Q || head.type === F) return [head];
    for (let i = 0; i < this.queue.length; i++) {
      const t = this.queue[i]!.type;
      if (t === S || t === H) return this.queue.slice(0, i + 1);
      if (t === Q || t === F || t === X) return this.queue.slice(0, i);
    }
    // A batch larger than the queue limit goes now, routed as unsure (see classifySegment).
    return this.queuedBytes >= MAX_QUEUED_BYTES / 2 ? this.queue.slice() : null;
  }

  private shift(): void {
    const f = this.queue.shift()!;
    this.queuedBytes -= f.raw.length;
    if (this.queuedBytes <= MAX_QUEUED_BYTES / 2 && !this.copyBlocked && this.socket.isPaused()) this.socket.resume();
  }

  /**
   * COPY FROM STDIN backpressure: the server reads slower than the client sends.
   * Stop forwarding and stop reading the client (at most MAX_QUEUED_BYTES stay
   * queued) until the server's socket drains; without this a fast client pushed
   * 200 MB into the proxy's memory in 3 s.
   */
  private blockCopyUntilDrained(conn: PgBackendConn): void {
    this.copyBlocked = true;
    this.socket.pause();
    conn.socket.once('drain', () => {
      if (!this.copyBlocked || this.backend !== conn) return;
      this.copyBlocked = false;
      if (this.queuedBytes <= MAX_QUEUED_BYTES / 2) this.socket.resume();
      this.pump();
    });
  }

  /** Translates one client message for the held connection and sends it. */
  private forward(frame: PgFrame): void {
    const type = frame.type;
    this.translator!.send(frame);
    this.shift();
    if (type === Q || type === S || type === F) {
      this.pendingSyncs++;
      this.batchOpen = false;
      this.afterFlush = false;
    } else if (type === H) {
      this.afterFlush = this.batchOpen;
    }
    const due = this.filter!.takeReadySynthetic();
    if (due.length === 0) return;
    // The client now has answers the proxy made (ParseComplete, CloseComplete): running the
    // batch again elsewhere would send them twice, so it is no longer retried.
    if (this.retry) this.retry.answered = true;
    for (const d of due) this.socket.write(d);
  }

  /** Bookkeeping at the start of a batch on the held connection: effects, pinning. */
  private openBatch(c: Classification): void {
    this.batchOpen = true;
    this.afterFlush = false;
    this.batchStartedAt = performance.now();
    this.batchClass = c.class;
    this.noteEffects(c);
  }

  /**
   * A segment after a Flush needs the primary (a write, or state that pins), but its batch
   * runs on a replica: the first segment read or prepared a statement there and the client
   * already has those answers, and everything up to Sync is one implicit transaction on one
   * connection, so the rest cannot move. It fails as a write in a read-only transaction
   * would (25006, at its place in the answers); the rest of the batch is dropped and its
   * Sync forwarded, so the replica ends its implicit transaction and says ReadyForQuery.
   * Only a first segment without an Execute can put a batch on a replica (see
   * flushRoutesAsUnsure), e.g. a Parse of a SELECT, Flush, then a Parse of an INSERT.
   */
  private refuseRestOfBatch(): void {
    const node = this.backend!.node;
    const filter = this.filter!;
    filter.synthesize(
      'execute',
      msg.errorResponse({
        severity: 'ERROR',
        code: '25006',
        message: `switchyard: this statement needs the primary, but its batch already runs on replica ${node} (messages before a Flush went there, and everything up to Sync is one transaction)`,
        hint: 'Send a Sync before a statement that writes.',
      }),
    );
    filter.errorSinceReady = true;
    this.pendingEffects = [];
    this.skipToSync = true;
    for (const d of filter.takeReadySynthetic()) this.socket.write(d);
  }

  /** The session effects of a batch, or of a segment of it after a Flush: pin, or record settings. */
  private noteEffects(c: Classification): void {
    const verdict = effectVerdict(c, this.txStatus !== 'I' || c.transaction !== undefined);
    if (verdict === 'pin') this.pin();
    else if (verdict === 'record') this.pendingEffects.push(...(c.session ?? []));
  }

  /**
   * SQL `DEALLOCATE name` (a Query by itself) where `name` is a protocol-level statement
   * of this session: the server only knows it under its shared server name, and other
   * sessions may use it there, so the session answers it as PostgreSQL would
   * (CommandComplete, ReadyForQuery) and only forgets the client's name; the
   * connections keep their cached statements. `DEALLOCATE ALL` likewise forgets every
   * client name, unless the session is pinned: it may have SQL-level PREPAREd
   * statements on its connection, so the server runs it (BatchTranslator then forgets
   * that connection's cache too). Any other name goes to the server: an SQL-level
   * statement lives on the connection its PREPARE pinned; an unknown name gets
   * PostgreSQL's own 26000. In a failed transaction PostgreSQL refuses DEALLOCATE like
   * any other command (25P02), and so does the session, without a round trip.
   * Returns true when it answered.
   */
  private answerDeallocate(c: Classification): boolean {
    const e = c.statements === 1 && c.session?.length === 1 ? c.session[0]! : null;
    if (e?.kind !== 'sql_deallocate') return false;
    if (this.txStatus === 'E') {
      this.socket.write(msg.errorResponse({ severity: 'ERROR', code: '25P02', message: 'current transaction is aborted, commands ignored until end of transaction block' }));
    } else if (e.name === 'all') {
      if (this.pinned) return false;
      this.namedStatements?.clear();
      this.socket.write(msg.commandComplete('DEALLOCATE ALL'));
    } else {
      if (!this.namedStatements?.delete(e.name)) return false;
      this.socket.write(msg.commandComplete('DEALLOCATE'));
    }
    this.socket.write(msg.readyForQuery(this.txStatus));
    return true;
  }

  /**
   * Keep the session on its current connection for good. Only a primary
   * connection is kept on the read/write listener: a session pinned to a replica
   * could never write again. (State set inside a read-only transaction on a
   * replica therefore ends with that transaction.)
   */
  pin(): void {
    if (this.pinned) return;
    if (this.backendRoute === 'replica' && this.id.listener === 'rw') return;
    this.pinned = true;
    this.runtime.pinnedSessions++;
  }

  /**
   * 1. route the batch, 2. borrow a connection, 3. bring it to the session's state,
   * 4. forward the batch. When the route is known now and an idle connection is at
   * hand (the common case) this all happens synchronously, with no promise: at
   * 1 client that path is what every pgbench -S transaction takes. Returns true
   * when the batch was failed synchronously, so the caller's loop goes on with the
   * next one (no recursion, however long a pipeline of failing statements is).
   */
  private startBatch(segment: PgFrame[], classification: Classification): boolean {
    const head = segment[0]!;
    const routing = { avoidReplica: this.avoidReplica, causal: causalOf(this) };
    let now: RoutedTo | 'wait';
    try {
      now = routeNow(this.runtime, classification, this.id.listener, routing);
    } catch (err) {
      this.failBatch(err, head);
      return true;
    }
    if (now !== 'wait') {
      const slot = this.takeHeld(now) ?? this.tryBorrow(now.node);
      if (slot) {
        this.runtime.counters.decision(classification.class, now.reason);
        try {
          this.runOn(now, slot.conn, slot.pool, segment, classification);
        } catch (err) {
          this.failBatch(err, head);
          return true;
        }
        return false;
      }
    }
    this.acquiring = true;
    (now === 'wait' ? decideRoute(this.runtime, classification, this.id.listener, routing) : Promise.resolve(now))
      .then(async (first) => {
        let decision = first;
        let slot: { conn: PgBackendConn; pool: Pool<PgBackendConn> };
        try {
          slot = this.takeHeld(decision) ?? (await this.borrow(decision.node));
        } catch (err) {
          // Nothing was sent yet and the failed connect has already marked the node down
          // (runtime.reportFailure): route once more, away from that node.
          if (this.closed || !isSwitchyardError(err) || err.code !== ErrorCodes.BACKEND_CONNECT_FAILED) throw err;
          decision = await decideRoute(this.runtime, classification, this.id.listener, { ...routing, avoidReplica: decision.target === 'replica' ? decision.node : this.avoidReplica });
          if (decision.node === first.node) throw err;
          this.log.info({ node: first.node, to: decision.node }, 'connect failed before anything was sent: routed again');
          slot = this.takeHeld(decision) ?? (await this.borrow(decision.node));
        }
        this.runtime.counters.decision(classification.class, decision.reason);
        if (this.closed) {
          slot.pool.release(slot.conn);
          return;
        }
        this.runOn(decision, slot.conn, slot.pool, segment, classification);
      })
      .catch((err) => {
        this.acquiring = false;
        if (this.closed) return;
        this.failBatch(err, head);
        this.pump();
      });
    return false;
  }

  /** Steps 3 and 4 of startBatch on the borrowed connection. */
  private runOn(decision: RoutedTo, conn: PgBackendConn, pool: Pool<PgBackendConn>, segment: PgFrame[], classification: Classification): void {
    const head = segment[0]!;
    if (!conn.attach(this)) {
      pool.discard(conn);
      throw new SwitchyardError(ErrorCodes.BACKEND_GONE, `connection to node ${decision.node} was lost`);
    }
    this.backend = conn;
    this.backendPool = pool;
    this.backendRoute = decision.target;
    this.translator = new BatchTranslator(this, conn, (this.filter ??= new ResponseFilter()), this.runtime.preparedCacheSize, this.runtime.classifier);
    this.runtime.counters.query(conn.node, decision.target);
    // A complete autocommit read may run again elsewhere if this connection dies unanswered.
    const complete = head.type === Q || head.type === F || segment[segment.length - 1]!.type === S;
    this.retry = classification.class === 'read' && complete && this.txStatus === 'I' && !this.retried ? { frames: segment, node: conn.node, answered: false } : null;
    this.acquiring = false;
    // One corked write for the replayed settings and the whole batch: a write per
    // message cost 2 syscalls per pgbench -M extended transaction instead of 1.
    conn.socket.cork();
    try {
      this.syncSettings(conn);
      this.openBatch(classification);
      if (this.queue[0] === head) this.forward(head);
      this.pump();
    } finally {
      conn.socket.uncork();
    }
  }

  /** Answers a batch that cannot run with one error, as PostgreSQL would answer a failing one. */
  private failBatch(err: unknown, head: PgFrame): void {
    this.sendError(err);
    if (head.type === Q || head.type === F) {
      this.shift();
      this.socket.write(msg.readyForQuery(this.txStatus));
    } else {
      this.discardUntilSync = true;
    }
  }

  /** borrow's synchronous case: an idle connection now, or null. */
  private tryBorrow(node: string): { conn: PgBackendConn; pool: Pool<PgBackendConn> } | null {
    const settingsKey = this.settings.key;
    return this.runtime.tryAcquire(node, this.id.user, this.id.database, this.id.params, (c) => connState(c).settingsKey === settingsKey) ?? null;
  }

  /** A pooled connection to `node`, preferring one whose settings already match the session's. */
  private borrow(node: string): Promise<{ conn: PgBackendConn; pool: Pool<PgBackendConn> }> {
    const settingsKey = this.settings.key;
    return this.runtime.acquire(node, this.id.user, this.id.database, this.id.params, (c) => connState(c).settingsKey === settingsKey);
  }

  /**
   * pool.mode: session keeps one primary and (lazily) one replica connection for
   * the client's whole session. The held replica serves reads as long as the
   * snapshot still lets it; otherwise it goes back and the router's pick is used.
   */
  private takeHeld(decision: { node: string; target: 'primary' | 'replica' }): { conn: PgBackendConn; pool: Pool<PgBackendConn> } | null {
    const slot = this.held?.get(decision.target);
    if (!slot) return null;
    this.held!.delete(decision.target);
    const snap = this.runtime.snapshot();
    const state = snap.nodes.find((n) => n.name === slot.conn.node);
    const cfg = this.runtime.config.routing;
    const usable =
      !slot.conn.broken &&
      (decision.target === 'primary'
        ? slot.conn.node === snap.primary
        : state !== undefined && replicaEligibility(state, { bytes: cfg.max_replica_lag.bytes, timeMs: cfg.max_replica_lag.time }).eligible);
    if (usable) return slot;
    if (slot.conn.broken) slot.pool.discard(slot.conn);
    else slot.pool.release(slot.conn);
    return null;
  }

  /** Replays the session's settings on a connection that carries others; its answers are swallowed. */
  private syncSettings(conn: PgBackendConn): void {
    const state = connState(conn);
    const key = this.settings.key;
    if (state.settingsKey === key) return;
    conn.write(msg.query(this.settings.replaySql()));
    this.filter!.expect('query', true);
    this.pendingSyncs++;
    state.settingsKey = key;
  }

  // ---- server side (PgBackendOwner) -------------------------------------

  onBackendData(conn: PgBackendConn, chunk: Buffer): void {
    this.idle.touch();
    // While a read may still be retried, its first answer frames (RowDescription, notices)
    // are held back: a server that is ending the connection (pg_terminate_backend, shutdown)
    // may say FATAL after them, and then the read runs elsewhere instead.
    if (this.retry && !this.retry.answered) {
      const held = this.heldBack ? Buffer.concat([this.heldBack, chunk]) : chunk;
      const verdict = holdBackVerdict(held);
      if (verdict === 'fatal') {
        this.heldBack = null;
        this.log.debug({ node: conn.node }, 'backend ended the connection before answering a read');
        conn.destroy(); // detaches us first, so the close is reported here, once
        this.onBackendClosed(conn, 'terminated by the server');
        return;
      }
      if (verdict === 'wait') {
        if (held === chunk) conn.keepChunk();
        this.heldBack = held;
        return;
      }
      this.heldBack = null;
      chunk = held;
    }
    const out = this.filter!.feed(chunk);
    if (out.length === 0) return;
    if (this.retry) this.retry.answered = true;
    let ok = true;
    if (out.length === 1) ok = this.socket.write(out[0]!);
    else {
      this.socket.cork();
      for (const b of out) ok = this.socket.write(b);
      this.socket.uncork();
    }
    // Whatever the client socket did not take at once still points into the read buffer.
    if (this.socket.writableLength > 0) conn.keepChunk();
    if (!ok) this.backend?.pause();
  }

  onBackendFrame(conn: PgBackendConn, type: number, _payload: Buffer | null): void {
    if (type === READY) {
      this.pendingSyncs = Math.max(0, this.pendingSyncs - 1);
      this.txStatus = conn.txStatus;
      if (conn.txStatus === 'I') causalOf(this).settle();
      this.copyIn = false;
      if (this.pendingSyncs === 0) this.endOfBatches(conn);
      this.pump();
    } else if (type === COPY_IN || type === COPY_BOTH) {
      this.copyIn = true;
      this.pump();
    }
  }

  /** Every batch sent so far is answered: settle settings, observe the duration, maybe release. */
  private endOfBatches(conn: PgBackendConn): void {
    const seconds = (performance.now() - this.batchStartedAt) / 1000;
    (this.backendRoute === 'primary' ? this.runtime.counters.durationPrimary : this.runtime.counters.durationReplica).observe(seconds);
    const filter = this.filter!;
    if (this.pendingEffects.length > 0 && !filter.errorSinceReady && this.txStatus === 'I') {
      this.settings.apply(this.pendingEffects);
      connState(conn).settingsKey = this.settings.key;
    }
    this.pendingEffects = [];
    filter.errorSinceReady = false;
    this.retry = null;
    if (this.txStatus === 'I' && !this.pinned && !this.batchOpen) this.releaseBackend();
  }

  onBackendClosed(conn: PgBackendConn, reason: string): void {
    this.log.warn({ node: conn.node, reason }, 'backend connection lost');
    this.runtime.counters.error(ErrorCodes.BACKEND_GONE);
    this.backendPool?.discard(conn);
    this.backend = null;
    this.backendPool = null;
    this.translator = null;
    this.filter?.reset();
    const retry = this.retry;
    this.retry = null;
    this.heldBack = null;
    const outstanding = this.pendingSyncs;
    this.pendingSyncs = 0;
    this.copyIn = false;
    if (this.copyBlocked) {
      this.copyBlocked = false;
      if (this.queuedBytes <= MAX_QUEUED_BYTES / 2) this.socket.resume();
    }
    this.pendingEffects = [];
    const wasPinned = this.pinned;
    const txWasOpen = this.txStatus !== 'I';
    if (this.pinned) this.runtime.pinnedSessions--;
    this.pinned = false;
    this.txStatus = 'I';
    // 0. A pinned session's state (temp tables, LISTEN, locks) died with its connection:
    //    like PostgreSQL itself, end the client's connection rather than go on without it.
    if (wasPinned) return this.fatal(new SwitchyardError(ErrorCodes.BACKEND_GONE, `connection to node ${conn.node} was lost with this session's state: ${reason}`));
    // 1. An autocommit read that got no answer yet runs once more, routed afresh.
    if (retry && !retry.answered && !this.batchOpen) {
      this.retried = true;
      this.avoidReplica = retry.node;
      this.runtime.readRetries++;
      this.log.info({ node: retry.node }, 'read retried after its backend connection was lost');
      this.queue.unshift(...retry.frames);
      for (const f of retry.frames) this.queuedBytes += f.raw.length;
      this.pump();
      return;
    }
    // 2. Otherwise every outstanding Query/Sync gets its error and ReadyForQuery; an open
    //    extended batch is discarded up to its Sync. The session itself stays usable.
    const err = new SwitchyardError(ErrorCodes.BACKEND_GONE, `connection to node ${conn.node} was lost: ${reason}`);
    // 3. An idle open transaction died unseen: the client's next statement must not run
    //    outside the transaction it believes in, so that statement gets the error.
    if (txWasOpen && outstanding === 0 && !this.batchOpen) this.lostTransaction = err;
    for (let i = 0; i < outstanding; i++) {
      this.sendError(err);
      this.socket.write(msg.readyForQuery('I'));
    }
    this.skipToSync = false;
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
    sendCancel(b);
  }

  private releaseBackend(): void {
    const conn = this.backend;
    const pool = this.backendPool;
    this.backend = null;
    this.backendPool = null;
    this.translator = null;
    this.retried = false;
    this.avoidReplica = null;
    this.filter?.reset();
    if (!conn || !pool) return;
    conn.detach();
    conn.resume();
    if (this.runtime.config.pool.mode === 'session') (this.held ??= new Map()).set(this.backendRoute, { conn, pool });
    else pool.release(conn);
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
   *   3. a pinned session's connection (temp tables, LISTEN, locks) is destroyed;
   *   4. otherwise it is returned as is (its settings and statements are known per connection).
   */
  private onClientClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.runtime.unregisterSession(this.id.pid);
    this.idle.stop();
    this.runtime.clientConnections--;
    if (this.pinned) this.runtime.pinnedSessions--;
    // Connections held idle in pool.mode: session go back as they are (idle, no transaction).
    for (const { conn, pool } of this.held?.values() ?? []) {
      if (conn.broken) pool.discard(conn);
      else pool.release(conn);
    }
    this.held = null;
    const conn = this.backend;
    const pool = this.backendPool;
    this.backend = null;
    this.backendPool = null;
    if (!conn || !pool) return;
    conn.detach();
    if (this.pendingSyncs > 0 || this.copyIn || this.batchOpen || this.pinned) {
      if (this.pendingSyncs > 0) sendCancel(conn);
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

  /**
   * limits.client_idle_timeout ran out: FATAL 57P05, then the usual client-gone
   * path gives back what the session holds (an open transaction is rolled back,
   * a pinned connection destroyed, held ones released). A client that does not
   * close its side is cut off after 2s.
   */
  private expireIdle(idleMs: number): void {
    const inTx = this.txStatus !== 'I' || this.lostTransaction !== null;
    this.log.info({ idleMs, inTransaction: inTx }, 'closing idle client session');
    this.fatal(new SwitchyardError(ErrorCodes.CLIENT_IDLE_TIMEOUT, `terminating connection due to client_idle_timeout: idle for ${idleMs}ms${inTx ? ' in a transaction (rolled back)' : ''}`));
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  /** A protocol violation from the client: FATAL 08P01 and close. */
  private fatal(err: unknown): void {
    if (this.closed) return;
    const code = isSwitchyardError(err) ? err.code : ErrorCodes.PROTOCOL_VIOLATION;
    if (!isSwitchyardError(err)) this.log.error({ err }, 'internal error in session');
    this.runtime.counters.error(code);
    const message = err instanceof Error ? err.message : String(err);
    this.socket.end(msg.errorResponse({ severity: 'FATAL', code: pgSqlState[code], message }));
    this.onClientClosed();
  }
}

/** Frames that may precede a FATAL without the client having seen any result yet. */
const HOLDABLE = new Set([0x54 /* T */, 0x4e /* N */, 0x53 /* S */, 0x74 /* t */, 0x31 /* 1 */, 0x32 /* 2 */]);
/** Most bytes held back; beyond this the answer is forwarded (no retry). */
const MAX_HELD_BACK = 64 * 1024;

/**
 * Walks the frames at the start of a read's answer: 'fatal' if a FATAL or PANIC
 * ErrorResponse comes before any result, 'wait' while only holdable frames (or
 * an incomplete ErrorResponse) were seen, else 'flush'.
 */
function holdBackVerdict(buf: Buffer): 'fatal' | 'wait' | 'flush' {
  let pos = 0;
  while (pos + 5 <= buf.length) {
    const type = buf[pos]!;
    const end = pos + 1 + buf.readInt32BE(pos + 1);
    if (type === 0x45 /* E */) {
      if (end > buf.length) return buf.length > MAX_HELD_BACK ? 'flush' : 'wait';
      return isFatalError(buf.subarray(pos, end)) ? 'fatal' : 'flush';
    }
    if (!HOLDABLE.has(type)) return 'flush';
    pos = end;
  }
  return buf.length > MAX_HELD_BACK ? 'flush' : 'wait';
}

/** True when the buffer starts with a whole ErrorResponse of severity FATAL or PANIC. */
function isFatalError(chunk: Buffer): boolean {
  if (chunk.length < 6 || chunk[0] !== 0x45) return false;
  const end = Math.min(chunk.length, 1 + chunk.readInt32BE(1));
  let pos = 5;
  while (pos < end && chunk[pos] !== 0) {
    const field = chunk[pos]!;
    const stop = chunk.indexOf(0, pos + 1);
    if (stop < 0 || stop >= end) return false;
    if (field === 0x53 /* S */) {
      const severity = chunk.toString('latin1', pos + 1, stop);
      return severity === 'FATAL' || severity === 'PANIC';
    }
    pos = stop + 1;
  }
  return false;
}

/*
 * flushRoutesAsUnsure: in the extended protocol everything up to Sync is one implicit
 * transaction on one connection, but a client may send a Flush in the middle and wait for
 * the answers so far before it sends the rest (pg-cursor fetching rows, postgres.js
 * describing a new statement, psycopg 3 pipelines). So the proxy cannot wait for the Sync
 * to see the whole batch (such a client would wait forever), and what comes after the
 * Flush cannot move to another node (it is the same transaction, and the answers so far
 * already reached the client). The simple rule that stays correct:
 *   - on the read/write listener, a first segment that ends at a Flush and executes
 *     something (an Execute) is routed as unsure, i.e. to the primary, where whatever
 *     follows can run; the cost is that reads fetched with Flush (cursors) use the primary;
 *   - a first segment that only prepares or describes (Parse, Bind, Describe) is routed by
 *     its own class: what follows is nearly always the Bind/Execute of that statement;
 *   - later segments are classified for their session effects; one that needs the primary
 *     while the batch runs on a replica fails with 25006 (PgSession.refuseRestOfBatch)
 *     rather than be sent to the replica unclassified.
 * On the read-only listener every segment is routed by its own class (a replica); a write
 * after a Flush meets the replica's own 25006, as any write on that listener is refused.
 */

function endsSegment(type: number): boolean {
  return type === S || type === H || type === Q || type === F;
}

/** Cancels whatever runs on a server connection, with that connection's own key. */
function sendCancel(conn: PgBackendConn): void {
  const s = net.connect({ host: conn.host, port: conn.port });
  s.on('error', () => s.destroy());
  s.on('connect', () => s.end(msg.cancelRequest(conn.pid, conn.secret)));
  s.setTimeout(5000, () => s.destroy());
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
