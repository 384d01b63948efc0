import { Com, Status, buildErr, buildOk, framePacket, type MysqlPacket } from '../../protocol/mysql/index.js';
import type { BackendStatement } from '../../backend/mysql/conn.js';
import type { Classification } from '../../sql/index.js';
import type { Held, MysqlSession } from './session.js';
import { dependsOnPrevious, mysqlEffectVerdict } from './session-state.js';
import { CollectSink, reseq, type ClientSink } from './sink.js';
import { AFTERMATH_GONE, UNREPEATABLE } from './answers.js';
import { commandStatementId, parsePrepareOk, rewriteExecute, statementKey, withStatementId, type ClientStatement } from './statements.js';

const NO_WRITE: Classification = { class: 'read', reason: 'read', statements: 1, hints: {} };
/** Cursor type bits of COM_STMT_EXECUTE's flags (READ_ONLY, FOR_UPDATE, SCROLLABLE). */
const CURSOR_FLAGS = 0x07;

type Prepared = { ok: true; stmt: BackendStatement; packets: MysqlPacket[] } | { ok: false; error: Buffer };

/**
 * The COM_STMT_* commands of one session. Client statement ids are the
 * session's own; on each backend connection a statement is prepared under that
 * connection's server id the first time the connection executes it (cached
 * per connection by database and text, least recently used closed beyond
 * pool.prepared_statements), and each execute is routed by the statement's class.
 */
export class PreparedStatements {
  private readonly stmts = new Map<number, ClientStatement>();
  private nextId = 1;
  /** The client statement whose server cursor is open on the held connection. */
  private cursorOf: number | null = null;

  constructor(private readonly s: MysqlSession) {}

  /** COM_STMT_PREPARE: prepared on the node its class routes to, answered with a client id. */
  async prepare(p: MysqlPacket, seq: number, _sink: ClientSink): Promise<void> {
    const sql = p.payload.toString('utf8', 1);
    const c = this.s.runtime.classifier.classify(sql);
    // Preparing a dependent statement (LAST_INSERT_ID() ...) right after a write: prepared where
    // the write ran, and what that left stays for the execute that follows.
    const dependent = dependsOnPrevious(c, sql);
    const saved = dependent ? await this.s.lastAftermath() : null;
    const h = await this.s.connFor(c, mysqlEffectVerdict(c) === 'pin', dependent);
    this.s.restoreAftermath(saved);
    const r = await this.prepareOn(h, sql, true);
    if (!r.ok) {
      this.s.reply(r.error, seq);
      this.s.settle(h, NO_WRITE, { status: null, error: true, warnings: 0, last: r.error }, dependent);
      return;
    }
    const id = this.nextId++;
    this.stmts.set(id, { id, sql, classification: c, params: r.stmt.params, columns: r.stmt.columns, types: null, longData: [] });
    // The server numbered its answer after our one-packet command (seq 0); the client's may have been split.
    const delta = (seq - 1) & 0xff;
    const out = r.packets.map((pk, i) => {
      const raw = i === 0 ? withStatementId(pk.raw, id) : pk.raw;
      return delta === 0 ? raw : reseq(raw, delta);
    });
    this.s.socket.write(Buffer.concat(out));
    this.s.settle(h, NO_WRITE, { status: null, error: false, warnings: 0, last: r.packets[0]!.payload }, dependent);
  }

  /** COM_STMT_EXECUTE: routed by the statement's class, prepared there if needed, ids rewritten. */
  async execute(p: MysqlPacket, seq: number, sink: ClientSink): Promise<void> {
    const id = commandStatementId(p.payload);
    const stmt = this.stmts.get(id);
    if (!stmt) return this.unknown(id, 'mysqld_stmt_execute', seq);
    const cursor = p.payload.length > 5 && (p.payload[5]! & CURSOR_FLAGS) !== 0;
    const c = stmt.classification;
    const pin = mysqlEffectVerdict(c) === 'pin';
    // Dependent (LAST_INSERT_ID() ...): on the lingering connection, or one given what it left;
    // ROW_COUNT() / FOUND_ROWS() cannot be given to another connection: refused, not guessed.
    const dependent = dependsOnPrevious(c, stmt.sql);
    if (dependent) {
      const after = await this.s.lastAftermath();
      if (after && (UNREPEATABLE.test(stmt.sql) || after.lastInsertId === null)) {
        this.s.dropAftermath();
        return this.s.reply(buildErr(AFTERMATH_GONE), seq);
      }
    }
    const h = await this.s.connFor(c, pin || cursor, dependent);
    // Prepared on this connection already (the common case): no promise to wait for.
    const known = this.preparedOn(h, stmt.sql);
    const r = known ?? (await this.prepareOn(h, stmt.sql, false));
    if (!r.ok) {
      this.s.reply(r.error, seq);
      this.s.settle(h, NO_WRITE, { status: null, error: true, warnings: 0, last: r.error });
      return;
    }
    // Long data goes to the connection that executes, right before the execute.
    for (const ld of stmt.longData) {
      const copy = Buffer.from(ld);
      copy.writeUInt32LE(r.stmt.id >>> 0, 1);
      h.conn.write(framePacket(copy, 0).bytes);
    }
    stmt.longData = [];
    const framed = framePacket(rewriteExecute(p.payload, stmt, r.stmt), 0);
    sink.delta = (p.lastSeq - ((framed.nextSeq - 1) & 0xff)) & 0xff;
    const end = await this.s.run(h, framed.bytes, 'result', sink);
    if (cursor && end.status !== null && end.status & Status.CURSOR_EXISTS) {
      this.cursorOf = id;
      this.s.setCursorOpen(true);
    }
    if (pin) this.s.pin();
    this.s.settle(h, c, end);
  }

  /** COM_STMT_FETCH: only on the connection holding the cursor. */
  async fetch(p: MysqlPacket, seq: number, sink: ClientSink): Promise<void> {
    const id = commandStatementId(p.payload);
    const stmt = this.stmts.get(id);
    const h = this.s.held;
    if (!stmt) return this.unknown(id, 'mysqld_stmt_fetch', seq);
    const backend = h ? h.conn.prepared.get(statementKey(h.conn.db, stmt.sql)) : undefined;
    if (!h || this.cursorOf !== id || !backend) {
      return this.s.reply(buildErr({ errno: 1421, sqlState: 'HY000', message: `The statement (${id}) has no open cursor.` }), seq);
    }
    const payload = Buffer.from(p.payload);
    payload.writeUInt32LE(backend.id >>> 0, 1);
    const end = await this.s.run(h, framePacket(payload, 0).bytes, 'rows', sink);
    if (end.error || (end.status !== null && end.status & Status.LAST_ROW_SENT)) this.closeCursor();
    this.s.settle(h, NO_WRITE, end);
  }

  longData(payload: Buffer): void {
    const stmt = this.stmts.get(commandStatementId(payload));
    // Unknown statement: the server ignores it too (the execute then fails).
    stmt?.longData.push(Buffer.from(payload));
  }

  /** COM_STMT_CLOSE: the client's id is forgotten; connections keep their server statement cached. */
  close(payload: Buffer): void {
    const id = commandStatementId(payload);
    this.stmts.delete(id);
    if (this.cursorOf === id) this.closeCursor();
  }

  /** COM_STMT_RESET: long data dropped here; an open cursor is closed on its connection. */
  async reset(p: MysqlPacket, seq: number, sink: ClientSink): Promise<void> {
    const id = commandStatementId(p.payload);
    const stmt = this.stmts.get(id);
    if (!stmt) return this.unknown(id, 'mysqld_stmt_reset', seq);
    stmt.longData = [];
    const h = this.s.held;
    const backend = h ? h.conn.prepared.get(statementKey(h.conn.db, stmt.sql)) : undefined;
    if (this.cursorOf === id && h && backend) {
      const payload = Buffer.from(p.payload);
      payload.writeUInt32LE(backend.id >>> 0, 1);
      const end = await this.s.run(h, framePacket(payload, 0).bytes, 'result', sink);
      this.closeCursor();
      this.s.settle(h, NO_WRITE, end);
      return;
    }
    this.s.reply(buildOk({ status: this.s.status() }), seq);
  }

  /** Every statement of the session is gone (COM_RESET_CONNECTION, COM_CHANGE_USER). */
  clear(): void {
    this.stmts.clear();
    this.cursorOf = null;
  }

  private closeCursor(): void {
    this.cursorOf = null;
    this.s.setCursorOpen(false);
  }

  private unknown(id: number, where: string, seq: number): void {
    this.s.reply(buildErr({ errno: 1243, sqlState: 'HY000', message: `Unknown prepared statement handler (${id}) given to ${where}` }), seq);
  }

  /** The connection's statement for `sql` when it has one (marked most recently used), else null. */
  private preparedOn(h: Held, sql: string): Prepared | null {
    const conn = h.conn;
    const key = statementKey(conn.db, sql);
    const cached = conn.prepared.get(key);
    if (!cached) return null;
    conn.prepared.delete(key);
    conn.prepared.set(key, cached);
    return { ok: true, stmt: cached, packets: [] };
  }

  /**
   * The server statement for `sql` on the held connection: the cached one, or
   * a new COM_STMT_PREPARE (always new when `fresh`: the client's own prepare
   * needs the server's full answer). Beyond the cache size the least recently
   * used statement is closed on the server.
   */
  private async prepareOn(h: Held, sql: string, fresh: boolean): Promise<Prepared> {
    const conn = h.conn;
    const key = statementKey(conn.db, sql);
    const cached = conn.prepared.get(key);
    if (cached) {
      conn.prepared.delete(key);
      if (!fresh) {
        conn.prepared.set(key, cached);
        return { ok: true, stmt: cached, packets: [] };
      }
      conn.closeStatement(cached.id);
    }
    const collect = new CollectSink();
    const end = await this.s.run(h, framePacket(Buffer.concat([Buffer.from([Com.STMT_PREPARE]), Buffer.from(sql, 'utf8')]), 0).bytes, 'prepare', collect);
    if (end.error) return { ok: false, error: Buffer.from(end.last) };
    const ok = parsePrepareOk(collect.packets[0]!.payload);
    const stmt: BackendStatement = { id: ok.id, params: ok.params, columns: ok.columns };
    conn.prepared.set(key, stmt);
    const capacity = this.s.runtime.preparedCacheSize;
    for (const [k, old] of conn.prepared) {
      if (conn.prepared.size <= capacity) break;
      conn.prepared.delete(k);
      conn.closeStatement(old.id);
    }
    return { ok: true, stmt, packets: collect.packets };
  }
}
