import type net from 'node:net';
import { ErrorCodes, SwitchyardError, isSwitchyardError } from '../../errors.js';
import {
  Com, Status, framePacket, type MysqlPacket, type MysqlPacketReader, type ResponseKind,
} from '../../protocol/mysql/index.js';
import type { MysqlBackendConn, MysqlResponseSink, ResponseEnd } from '../../backend/mysql/conn.js';
import type { Pool } from '../../pool/pool.js';
import type { Classification } from '../../sql/index.js';
import type { Logger } from '../../observability/logger.js';
import type { MysqlClusterRuntime, MysqlKillable, MysqlPoolKey } from '../../runtime/mysql-cluster.js';
import { decideRoute, routeNow } from '../pg/route.js';
import { causalOf } from '../causal.js';
import { MysqlSessionState, mysqlEffectVerdict, stateKey } from './session-state.js';
import { MysqlServerError, errPayload } from './errors.js';
import { ClientSink, CollectSink } from './sink.js';
import { singleTextRow, type Aftermath } from './answers.js';
import { PreparedStatements } from './prepared.js';
import { killOnNode } from './kill.js';
import { handleCommand } from './commands.js';
import { RetrySink } from './retry-sink.js';
import { idleSweeper, type IdleHandle, type IdleWatched } from '../idle-timer.js';

export interface MysqlIdentity {
  connectionId: number;
  user: string;
  database: string | null;
  key: MysqlPoolKey;
  clientCaps: number;
  nonce: Buffer;
  listener: 'rw' | 'ro';
  address: string;
}

export interface Held {
  conn: MysqlBackendConn;
  pool: Pool<MysqlBackendConn>;
  target: 'primary' | 'replica';
}

/** Queued client packets above which the client socket is paused. */
const MAX_QUEUED = 256;
const DONE: Promise<void> = Promise.resolve();

/**
 * The command phase of one MySQL client connection. Commands run one at a
 * time (the protocol is request/response): each is routed, runs on a borrowed
 * backend connection brought to the session's state first, and its answer is
 * forwarded as raw bytes. The connection is kept between commands while the
 * server status says a transaction is open or autocommit is off, while the
 * session is pinned (user variables, temporary tables, locks), and after a
 * write or warnings until the next command (LAST_INSERT_ID(), ROW_COUNT(),
 * SHOW WARNINGS read what the previous statement left); otherwise it goes back.
 * That linger yields to pool pressure: when another session waits for a
 * connection of the same pool, the session reads LAST_INSERT_ID() and
 * ROW_COUNT() off the lingering connection and gives it back (see reclaim).
 */
export class MysqlSession implements MysqlKillable, IdleWatched {
  private readonly queue: MysqlPacket[] = [];
  private busy = false;
  private closed = false;
  held: Held | null = null;
  private pinned = false;
  /** Held only for a statement that reads what the last one left (see class comment). */
  private lingering = false;
  /** The lingering connection is registered with its pool: given back when someone waits (see reclaim). */
  private reclaimable = false;
  /** Reading the aftermath of a lingering connection before it goes back (see reclaim). */
  private reclaiming: Promise<void> | null = null;
  /** What the previous statement left, read from its connection before that went back; for the next command only. */
  private aftermath: Aftermath | null = null;
  /** SET TRANSACTION applies to the next transaction of this connection: the next command must run here. */
  private mustUseHeld = false;
  /** A server-side cursor is open on the held connection (COM_STMT_FETCH follows). */
  private cursorOpen = false;
  /** LOCAL INFILE in progress: client packets go to this connection until the empty one. */
  private infile: MysqlBackendConn | null = null;
  /** The connection running a client command now (KILL QUERY stops it). */
  running: MysqlBackendConn | null = null;
  paused: MysqlBackendConn | null = null;
  private intercept: ((p: MysqlPacket) => void) | null = null;
  readonly state: MysqlSessionState;
  readonly prepared: PreparedStatements;
  /** pool.mode: session: connections kept for the whole session, by route. */
  private readonly kept = new Map<'primary' | 'replica', Held>();
  /** limits.client_idle_timeout (src/frontend/idle-timer.ts). */
  private readonly idle: IdleHandle;
  /** Set by connFor for a command that may run once more elsewhere if its connection dies unanswered (see run). */
  private retryable: Classification | null = null;
  /** The replica a retried read (or a read whose connect was refused) must not go back to. */
  private avoidReplica: string | null = null;
  /** The held connection died with the session's state during a command: the session ends once that command fails (see onHeldLost). */
  private lostWithState: SwitchyardError | null = null;
  /** Sequence id of the answer to the command being handled (while busy). */
  private answerSeq = 0;

  constructor(
    readonly socket: net.Socket,
    readonly runtime: MysqlClusterRuntime,
    private readonly reader: MysqlPacketReader,
    readonly id: MysqlIdentity,
    readonly log: Logger,
  ) {
    this.state = new MysqlSessionState(id.database);
    this.prepared = new PreparedStatements(this);
    runtime.attach(id.connectionId, this);
    this.idle = idleSweeper.watch(this);
    socket.on('data', (chunk: Buffer) => this.onClientData(chunk));
    socket.on('drain', () => {
      const conn = this.paused;
      this.paused = null;
      conn?.resume();
    });
    socket.on('close', () => this.onClientClosed());
    socket.on('error', (e) => this.log.debug({ err: e.message }, 'client socket error'));
  }

  // ---- client side -------------------------------------------------------

  // ---- limits.client_idle_timeout (IdleWatched) --------------------------

  timeoutMs(): number {
    return this.runtime.limits.client_idle_timeout;
  }

  /** Nothing queued or running, and no LOCAL INFILE upload in progress. */
  isIdle(): boolean {
    return !this.busy && this.queue.length === 0 && this.infile === null && this.intercept === null;
  }

  /** Unsolicited ERR 1159 (sequence id 0, as a server's timeout message), then the usual client-gone cleanup. */
  expire(idleMs: number): void {
    this.log.info({ idleMs }, 'closing idle client session');
    this.fatal(new SwitchyardError(ErrorCodes.CLIENT_IDLE_TIMEOUT, `Got timeout reading communication packets: client_idle_timeout, idle for ${idleMs}ms`), 0);
  }

  private onClientData(chunk: Buffer): void {
    if (this.closed) return;
    this.idle.touch();
    let packets: MysqlPacket[];
    try {
      packets = this.reader.push(chunk);
    } catch (e) {
      // The answer to the broken command packet (sequence id 0): 1, where a client expects it.
      return this.fatal(e, 1);
    }
    for (const p of packets) {
      if (this.intercept) {
        // A command in progress reads its next packet itself (COM_CHANGE_USER's auth switch answer).
        const take = this.intercept;
        this.intercept = null;
        take(p);
        continue;
      }
      if (this.infile) {
        // LOCAL INFILE data streams straight through; the empty packet ends the file.
        this.infile.write(p.raw);
        if (p.payload.length === 0) this.infile = null;
        continue;
      }
      this.queue.push(p);
    }
    if (this.queue.length > MAX_QUEUED) this.socket.pause();
    this.pump();
  }

  private pump(): void {
    if (this.busy || this.closed || this.queue.length === 0) return;
    const p = this.queue.shift()!;
    if (this.queue.length <= MAX_QUEUED / 2 && this.socket.isPaused()) this.socket.resume();
    const seq = (p.lastSeq + 1) & 0xff;
    // Every command starts at sequence id 0. Forwarded as it is, a wrong one makes the backend
    // answer "Got packets out of order" and drop a pooled connection: refuse it here, as a server
    // would (ERR, close), after the answers to the commands before it.
    if (p.seq !== 0) return this.fatal(new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, `Got packets out of order: a command with sequence id ${p.seq}`), seq);
    this.busy = true;
    this.answerSeq = seq;
    const sink = new ClientSink(this);
    handleCommand(this, p, seq, sink)
      .catch((e: unknown) => {
        if (this.closed) return;
        const lost = this.lostWithState;
        this.lostWithState = null;
        // The ERR answers the command in flight (its sequence id), then the connection closes.
        if (lost) return this.fatal(lost, sink.forwarded ? sink.nextSeq : seq);
        // An answer already partly forwarded cannot be ended cleanly: close, as a dying server would.
        if (sink.forwarded) return this.fatal(e, sink.nextSeq);
        this.sendError(e, seq);
      })
      .finally(() => {
        const lost = this.lostWithState;
        this.lostWithState = null;
        if (lost) this.fatal(lost, 0);
        this.busy = false;
        this.idle.touch();
        this.pump();
      });
  }

  // ---- routing and connections --------------------------------------------

  /** The held connection must stay: open transaction, autocommit off, pinned, cursor open. */
  private mustKeep(): boolean {
    if (!this.held) return false;
    const st = this.held.conn.status;
    return this.pinned || this.cursorOpen || (st & Status.IN_TRANS) !== 0 || (st & Status.AUTOCOMMIT) === 0;
  }

  /** Status flags for answers made here: the held connection's, or none open. */
  status(): number {
    return this.held ? this.held.conn.status & (Status.IN_TRANS | Status.AUTOCOMMIT | Status.IN_TRANS_READONLY) : Status.AUTOCOMMIT;
  }

  /**
   * The connection a statement runs on: 1. the held one while it must stay (or
   * the statement reads what the last one left); 2. otherwise a routing
   * decision (a statement that will pin goes to the primary), reusing a held
   * connection on the chosen node; 3. else a borrowed one, brought to the
   * session's database and settings.
   */
  async connFor(c: Classification, pin: boolean, dependent: boolean): Promise<Held> {
    this.retryable = null;
    if (this.reclaiming) await this.reclaiming;
    // After a linger was given back, a dependent statement gets a connection whose
    // LAST_INSERT_ID() is the one the previous statement left (see primeFor).
    let after = this.aftermath;
    this.aftermath = null;
    const held = this.held;
    if (held && (this.mustKeep() || (this.lingering && (dependent || this.mustUseHeld)))) {
      this.mustUseHeld = false;
      this.endLinger();
      this.runtime.counters.decision(c.class, this.pinned ? 'pinned' : 'transaction');
      this.runtime.counters.query(held.conn.node, held.target);
      return held;
    }
    const routed = pin && c.class === 'read' ? { ...c, class: 'write' as const } : c;
    // Routed synchronously unless a write must wait for a primary (an await less per statement).
    const routing = { causal: causalOf(this), avoidReplica: this.avoidReplica };
    const now = routeNow(this.runtime, routed, this.id.listener, routing);
    let decision = now !== 'wait' ? now : await decideRoute(this.runtime, routed, this.id.listener, routing);
    this.runtime.counters.decision(c.class, decision.reason);
    // What run() may send again elsewhere: an autocommit read with no session effect that
    // reads nothing the previous statement left (checked again at the connection's status).
    const retryable = c.class === 'read' && !pin && !dependent && !this.pinned && mysqlEffectVerdict(c) === 'none' ? c : null;
    // Given back meanwhile (someone waited while this route was decided): use what it left.
    if (this.reclaiming) await this.reclaiming;
    if (this.aftermath) after = this.aftermath;
    this.aftermath = null;
    this.endLinger();
    if (this.held) {
      if (this.held.conn.node === decision.node && !this.held.conn.broken) {
        this.held.target = decision.target;
        this.runtime.counters.query(decision.node, decision.target);
        this.retryable = autocommitIdle(this.held.conn.status) ? retryable : null;
        return this.held;
      }
      this.releaseHeld();
    }
    let h: Held;
    // At most twice: a connection that dies while it is brought to the session's state
    // (an idle one whose node just went away) had nothing of the client's command yet.
    for (let attempt = 1; ; attempt++) {
      try {
        h = await this.borrow(decision.node, decision.target);
      } catch (err) {
        // Nothing was sent yet and the failed connect has already marked the node down
        // (runtime.reportFailure, in the pool's create): route once more, away from that node,
        // as PgSession.startBatch does. A write finds the same primary, or waits for a new one.
        if (this.closed || !isSwitchyardError(err) || err.code !== ErrorCodes.BACKEND_CONNECT_FAILED) throw err;
        const first = decision;
        decision = await this.routeAgain(routed, first);
        if (decision.node === first.node) throw err;
        this.log.info({ node: first.node, to: decision.node }, 'connect failed before anything was sent: routed again');
        h = await this.borrow(decision.node, decision.target);
      }
      if (this.closed) {
        h.pool.release(h.conn);
        throw new SwitchyardError(ErrorCodes.BACKEND_GONE, 'client closed');
      }
      try {
        await this.syncState(h.conn, dependent && after ? after.lastInsertId : null);
        break;
      } catch (e) {
        h.conn.dirty = true;
        this.giveBack(h);
        if (attempt > 1 || this.closed || !isSwitchyardError(e) || e.code !== ErrorCodes.BACKEND_GONE) throw e;
        this.log.info({ node: decision.node }, 'connection lost before the command was sent: routed again');
        decision = await this.routeAgain(routed, decision);
      }
    }
    this.hold(h);
    this.runtime.counters.query(decision.node, decision.target);
    this.retryable = autocommitIdle(h.conn.status) ? retryable : null;
    return h;
  }

  /** Routes a statement once more, away from the replica `failed` names (a primary is never avoided). */
  private routeAgain(c: Classification, failed: { node: string; target: 'primary' | 'replica' }) {
    return decideRoute(this.runtime, c, this.id.listener, { causal: causalOf(this), avoidReplica: failed.target === 'replica' ? failed.node : this.avoidReplica });
  }

  private async borrow(node: string, target: 'primary' | 'replica'): Promise<Held> {
    const kept = this.kept.get(target);
    if (kept) {
      this.kept.delete(target);
      if (kept.conn.node === node && !kept.conn.broken) return kept;
      this.giveBack(kept);
    }
    const key = this.state.key;
    const db = this.state.db;
    const { conn, pool } = await this.runtime.acquire(node, this.id.key, (c) => c.db === db && stateKey(c) === key);
    return { conn, pool, target };
  }

  /** Replays database and settings on a connection that differs (answers swallowed, one round trip). */
  private async syncState(conn: MysqlBackendConn, lastInsertId: string | null = null): Promise<void> {
    const waits: Promise<ResponseEnd>[] = [];
    const db = this.state.db;
    if (db !== null && conn.db !== db) waits.push(conn.command(Buffer.concat([Buffer.from([Com.INIT_DB]), Buffer.from(db, 'utf8')])));
    const replay = this.state.replayFor(conn, this.id.key.charset);
    if (replay === undefined) throw new SwitchyardError(ErrorCodes.INTERNAL, 'cannot restore the character set of a pooled connection');
    for (const sql of replay ?? []) waits.push(conn.command(Buffer.concat([Buffer.from([Com.QUERY]), Buffer.from(sql, 'utf8')])));
    // Last, so the diagnostics the statement may read (warnings, errors) are this one's: none.
    if (lastInsertId !== null && /^\d+$/.test(lastInsertId)) waits.push(conn.command(Buffer.from(`\x03DO LAST_INSERT_ID(${lastInsertId})`, 'latin1')));
    if (waits.length === 0) return;
    const ends = await Promise.all(waits);
    const failed = ends.find((e) => e.error);
    if (failed) throw new MysqlServerError(failed.last);
    this.state.copyTo(conn);
  }

  private hold(h: Held): void {
    this.held = h;
    h.conn.onLost = (conn, reason) => this.onHeldLost(conn, reason);
  }

  /**
   * Runs one command on `h`, its answer forwarded through `sink`. A COM_QUERY
   * read that connFor marked retryable (autocommit, no transaction, not pinned,
   * no session effect, not dependent on the previous statement) runs once more,
   * routed afresh away from the node, when its connection dies, or answers with
   * a going-away ERR, before any byte of the answer reached the client. A
   * prepared statement's execute is never sent again: its bytes name a server
   * statement of that connection only. Writes and transactions are never retried.
   *
   * The lost node is not reported down from here: a KILL on a healthy server
   * also ends a connection. The retry avoids it; if it is really gone, the next
   * connect there is refused, and that marks it down (the pool's create).
   */
  async run(h: Held, bytes: Buffer, kind: ResponseKind, sink: MysqlResponseSink): Promise<ResponseEnd> {
    const retryable = this.retryable;
    this.retryable = null;
    if (!retryable || kind !== 'result' || bytes[4] !== Com.QUERY) return this.runOnce(h, bytes, kind, sink);
    const hold = new RetrySink(sink);
    let end: ResponseEnd;
    try {
      end = await this.runOnce(h, bytes, kind, hold);
    } catch (err) {
      if (this.closed || hold.passed || !isSwitchyardError(err) || err.code !== ErrorCodes.BACKEND_GONE) throw err;
      return this.runAgain(h, retryable, bytes, sink, (err as Error).message);
    }
    if (!hold.goingAway) return end;
    if (this.closed) throw new SwitchyardError(ErrorCodes.BACKEND_GONE, 'client closed');
    return this.runAgain(h, retryable, bytes, sink, 'the server said the connection is going away');
  }

  /**
   * The second (and last) run of a retryable read: 1. the lost connection is
   * dropped (onHeldLost has done it when the socket closed), 2. the statement is
   * routed again avoiding its node, 3. `h` takes the new connection in place, so
   * the caller's settle() sees the connection the answer came from.
   */
  private async runAgain(h: Held, c: Classification, bytes: Buffer, sink: MysqlResponseSink, reason: string): Promise<ResponseEnd> {
    const node = h.conn.node;
    if (this.held === h) {
      h.conn.dirty = true;
      this.releaseHeld();
    } else if (!h.conn.broken) {
      h.conn.destroy();
    }
    this.runtime.readRetries++;
    this.log.info({ node, reason }, 'read retried after its backend connection was lost');
    this.avoidReplica = node;
    let next: Held;
    try {
      next = await this.connFor(c, false, false);
    } finally {
      this.avoidReplica = null;
      this.retryable = null;
    }
    const heldNow = this.held === next;
    Object.assign(h, next);
    if (heldNow) this.hold(h);
    return this.runOnce(h, bytes, 'result', sink);
  }

  private async runOnce(h: Held, bytes: Buffer, kind: ResponseKind, sink: MysqlResponseSink): Promise<ResponseEnd> {
    const conn = h.conn;
    this.running = conn;
    const started = performance.now();
    try {
      return await conn.request(bytes, kind, sink);
    } finally {
      this.running = null;
      (h.target === 'primary' ? this.runtime.counters.durationPrimary : this.runtime.counters.durationReplica).observe((performance.now() - started) / 1000);
    }
  }

  /** After a command: keep the connection (transaction, pin, a write's aftermath) or give it back. */
  settle(h: Held, c: Classification, end: ResponseEnd, keepLinger = false): void {
    const st = h.conn.status;
    if ((st & Status.IN_TRANS) === 0 && (st & Status.AUTOCOMMIT) !== 0) causalOf(this).settle();
    if (this.mustKeep()) return;
    // SHOW WARNINGS / SHOW ERRORS also report an error, so an ERR keeps the connection too.
    // keepLinger: a COM_STMT_PREPARE of a dependent statement, whose execute comes next.
    const aftermath = (h.target === 'primary' && c.class === 'write') || end.warnings > 0 || end.error || this.mustUseHeld || keepLinger;
    if (aftermath && !h.conn.dirty) {
      this.lingering = true;
      // Yields to pool pressure unless the next command must run here whatever it is (SET
      // TRANSACTION), or the statement left warnings or an error: SHOW WARNINGS / SHOW ERRORS
      // would need their messages, which only that connection has. Those keep lingering
      // regardless of waiters: rare, and exact. In pool.mode session the connection stays anyway.
      if (!end.error && end.warnings === 0 && !this.mustUseHeld && this.runtime.config.pool.mode === 'transaction') {
        this.reclaimable = true;
        if (!h.pool.linger(h.conn, () => this.reclaim())) this.reclaim();
      }
      return;
    }
    this.releaseHeld();
  }

  private endLinger(): void {
    if (this.reclaimable && this.held) this.held.pool.unlinger(this.held.conn);
    this.reclaimable = false;
    this.lingering = false;
  }

  /**
   * Another session waits for a connection of the lingering one's pool: read
   * LAST_INSERT_ID() and ROW_COUNT() off it (exact, where the OK packet's
   * last_insert_id is not: an explicit value in an AUTO_INCREMENT column or an
   * INSERT ... ON DUPLICATE KEY UPDATE reports the row's id without changing
   * LAST_INSERT_ID()), then give it back. The next command waits for this.
   */
  private reclaim(): void {
    const h = this.held;
    if (!h || !this.lingering || !this.reclaimable || this.reclaiming) return;
    this.endLinger();
    this.reclaiming = this.readAftermath(h).finally(() => {
      this.reclaiming = null;
    });
  }

  private async readAftermath(h: Held): Promise<void> {
    let a: Aftermath = { lastInsertId: null, rowCount: null };
    try {
      const sink = new CollectSink();
      const end = await h.conn.command(Buffer.from('\x03SELECT LAST_INSERT_ID(), ROW_COUNT()', 'latin1'), 'result', sink);
      const row = end.error ? null : singleTextRow(sink.packets.map((p) => p.payload));
      if (row && row.length === 2) a = { lastInsertId: row[0]!, rowCount: row[1]! };
    } catch {
      // Lost meanwhile: onHeldLost has dealt with the connection; nothing is known.
    }
    if (this.closed || this.held !== h) return;
    this.aftermath = a;
    this.releaseHeld();
  }

  /** After the previous statement's connection went back: what it left (consumed by the next command's connFor). */
  async lastAftermath(): Promise<Aftermath | null> {
    if (this.reclaiming) await this.reclaiming;
    return this.aftermath;
  }

  /** Kept for the command after this one (a COM_STMT_PREPARE in between does not change it). */
  restoreAftermath(a: Aftermath | null): void {
    if (a) this.aftermath = a;
  }

  /** The next command was answered here (from the aftermath): nothing of it is left for the one after. */
  dropAftermath(): void {
    this.aftermath = null;
  }

  /** Keep the session on its current primary connection for good. */
  pin(): void {
    if (this.pinned || !this.held) return;
    if (this.held.target === 'replica' && this.id.listener === 'rw') return;
    this.pinned = true;
    this.runtime.pinnedSessions++;
  }

  /** SET TRANSACTION: the next statement must run on this connection. */
  keepForNextStatement(): void {
    this.mustUseHeld = true;
  }

  setCursorOpen(open: boolean): void {
    this.cursorOpen = open;
  }

  startInfile(conn: MysqlBackendConn): void {
    this.infile = conn;
  }

  releaseHeld(): void {
    this.endLinger();
    const h = this.held;
    this.held = null;
    this.mustUseHeld = false;
    this.cursorOpen = false;
    if (!h) return;
    h.conn.onLost = null;
    if (this.runtime.config.pool.mode === 'session' && !h.conn.dirty && !h.conn.broken) {
      const other = this.kept.get(h.target);
      if (other) this.giveBack(other);
      this.kept.set(h.target, h);
      return;
    }
    this.giveBack(h);
  }

  private giveBack(h: Held): void {
    h.conn.onLost = null;
    // Paused for a full client socket: never lend it out that way.
    if (this.paused === h.conn) this.paused = null;
    h.conn.resume();
    if (h.conn.broken || h.conn.dirty || h.conn.busy) {
      h.pool.discard(h.conn);
      h.conn.destroy();
    } else h.pool.release(h.conn);
  }

  /** The held connection died between commands. */
  private onHeldLost(conn: MysqlBackendConn, reason: string): void {
    if (this.held?.conn !== conn) return;
    const keep = this.mustKeep();
    this.endLinger();
    this.held.pool.discard(conn);
    this.held = null;
    // A transaction or pinned state died with it: end the client's connection, as the server would
    // have (also mid-command: going on unpinned would silently lose user variables or temp tables).
    // Otherwise a command in flight gets its error from its own path and the session goes on.
    if (!keep) return;
    const err = new SwitchyardError(ErrorCodes.BACKEND_GONE, `connection to node ${conn.node} was lost with this session's state: ${reason}`);
    // Mid-command, the command's own failure path closes with the right sequence id (an ERR
    // with sequence id 0 there reads as "packets out of order" to the client); between commands, now.
    // Otherwise the ERR answers what the client waits for: the command being handled, or the
    // next one already received; 0 (unsolicited) when there is none.
    if (this.running === conn && this.busy) this.lostWithState = err;
    else this.fatal(err, this.busy ? this.answerSeq : this.queue[0] ? (this.queue[0].lastSeq + 1) & 0xff : 0);
  }

  // ---- KILL, reset, quit ----------------------------------------------------
  /** KILL QUERY of the statement this session runs now, on its node, by the backend thread id. */
  async killQuery(): Promise<void> {
    const conn = this.running;
    if (conn) await killOnNode(this, conn, `KILL QUERY ${conn.threadId}`);
  }

  /**
   * Closed first, then the running statement's thread killed (by onClientClosed): a closed
   * session never runs its read again elsewhere when the backend answers the KILL with 1927.
   * An idle held connection is given back as for any client that leaves (rolled back if needed).
   */
  async killConnection(): Promise<void> {
    this.socket.destroy();
    await this.onClientClosed();
  }

  /** COM_RESET_CONNECTION: the session starts afresh (its database stays); a connection it held with state is dropped. */
  resetSession(): void {
    this.endLinger();
    this.aftermath = null;
    const h = this.held;
    if (h && this.mustKeep()) {
      this.held = null;
      h.conn.onLost = null;
      h.pool.discard(h.conn);
      h.conn.destroy();
    } else this.releaseHeld();
    this.lingering = false;
    this.mustUseHeld = false;
    this.cursorOpen = false;
    if (this.pinned) this.runtime.pinnedSessions--;
    this.pinned = false;
    this.state.reset();
    this.prepared.clear();
  }

  /** The client's next packet, taken before the command queue sees it. */
  nextClientPacket(): Promise<MysqlPacket> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => {
      this.intercept = resolve;
    });
  }

  quit(): void {
    this.queue.length = 0;
    this.socket.end();
    this.onClientClosed();
  }

  reply(payload: Buffer, seq: number): void {
    if (!this.closed) this.socket.write(framePacket(payload, seq).bytes);
  }

  sendError(err: unknown, seq: number): void {
    const code = err instanceof MysqlServerError ? 'server' : isSwitchyardError(err) ? err.code : ErrorCodes.INTERNAL;
    if (code === ErrorCodes.INTERNAL) this.log.error({ err }, 'internal error in session');
    this.runtime.counters.error(code);
    this.reply(errPayload(err), seq);
  }

  /** A protocol violation or a lost answer: an ERR where possible, then close. */
  fatal(err: unknown, seq: number): void {
    if (this.closed) return;
    const code = isSwitchyardError(err) ? err.code : ErrorCodes.PROTOCOL_VIOLATION;
    this.runtime.counters.error(code);
    this.log.debug({ err: (err as Error)?.message }, 'mysql session ended');
    if (this.socket.writable) this.socket.end(framePacket(errPayload(err), seq).bytes);
    this.onClientClosed();
  }

  /**
   * The client is gone. A connection it held must not go back dirty: one
   * running a command (its server thread is killed), or pinned (temporary
   * tables, locks, user variables), is destroyed; one with an open transaction or autocommit off is rolled back
   * and reset first; otherwise it goes back as it is. Resolves when the KILL of a running
   * statement has been answered.
   */
  onClientClosed(): Promise<void> {
    if (this.closed) return DONE;
    this.closed = true;
    this.idle.stop();
    this.runtime.unregister(this.id.connectionId);
    this.runtime.clientConnections--;
    if (this.pinned) this.runtime.pinnedSessions--;
    for (const k of this.kept.values()) this.giveBack(k);
    this.kept.clear();
    this.endLinger();
    const h = this.held;
    this.held = null;
    if (!h) return DONE;
    h.conn.onLost = null;
    if (h.conn.busy || this.pinned || this.cursorOpen || this.infile) {
      // A statement still running there would run to its end (MariaDB does not notice a closed
      // socket while it executes, e.g. a SLEEP or a long scan): its thread is killed, as
      // PgSession cancels. Only a connection that is destroyed anyway is killed by thread id, so
      // the id cannot belong to another session's command by then.
      const killing = h.conn.busy ? killOnNode(this, h.conn, `KILL ${h.conn.threadId}`).catch(() => undefined) : DONE;
      h.pool.discard(h.conn);
      h.conn.destroy();
      return killing;
    } else if (this.mustKeepStatus(h.conn.status)) {
      void h.conn.rollbackAndAutocommit().then((ok) => {
        if (ok) h.pool.release(h.conn);
        else {
          h.pool.discard(h.conn);
          h.conn.destroy();
        }
      });
    } else this.giveBack(h);
    return DONE;
  }

  private mustKeepStatus(st: number): boolean {
    return (st & Status.IN_TRANS) !== 0 || (st & Status.AUTOCOMMIT) === 0;
  }
}

/** Autocommit on and no transaction open: a statement there is its own transaction. */
function autocommitIdle(status: number): boolean {
  return (status & Status.IN_TRANS) === 0 && (status & Status.AUTOCOMMIT) !== 0;
}
