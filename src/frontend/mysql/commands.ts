import { ErrorCodes, SwitchyardError } from '../../errors.js';
import { Com, buildEof, buildErr, buildOk, type MysqlPacket, type ResponseKind } from '../../protocol/mysql/index.js';
import type { Classification } from '../../sql/index.js';
import type { MysqlSession } from './session.js';
import type { ClientSink } from './sink.js';
import { dependsOnPrevious, mysqlEffectVerdict } from './session-state.js';
import { changeUser } from './change-user.js';
import { killCommand } from './kill.js';
import { AFTERMATH_GONE, UNREPEATABLE, answerFromAftermath, framed } from './answers.js';

/** Texts above this are not classified: routed to the primary (bulk loads, huge INSERTs). */
const MAX_CLASSIFIED = 1 << 20;
const UNSURE: Classification = { class: 'write', reason: 'unknown', statements: 1, hints: {} };
const READ: Classification = { class: 'read', reason: 'read', statements: 1, hints: {} };
const KILL = /^\s*kill\s+(?:(query|connection)\s+)?(\d{1,10})\s*;?\s*$/i;

/** One client command of the command phase, dispatched by its first byte. */
export async function handleCommand(s: MysqlSession, p: MysqlPacket, seq: number, sink: ClientSink): Promise<void> {
  const payload = p.payload;
  const cmd = payload.length > 0 ? payload[0]! : -1;
  switch (cmd) {
    case Com.QUIT:
      return s.quit();
    case Com.PING:
      return s.reply(buildOk({ status: s.status() }), seq);
    case Com.QUERY:
      return query(s, p, seq, sink);
    case Com.INIT_DB:
      return initDb(s, p, sink);
    case Com.FIELD_LIST:
      return passThrough(s, p, 'field_list', sink);
    case Com.STATISTICS:
      return passThrough(s, p, 'single', sink);
    case Com.SET_OPTION:
      // Answered here: every backend connection of this client already has its MULTI_STATEMENTS flag.
      return s.reply(buildEof({ warnings: 0, status: s.status() }), seq);
    case Com.PROCESS_KILL:
      if (payload.length < 5) throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'COM_PROCESS_KILL without an id');
      return killCommand(s, payload.readUInt32LE(1), false, seq);
    case Com.CHANGE_USER:
      return changeUser(s, p, seq);
    case Com.RESET_CONNECTION:
      s.resetSession();
      return s.reply(buildOk({ status: s.status() }), seq);
    case Com.STMT_PREPARE:
      return s.prepared.prepare(p, seq, sink);
    case Com.STMT_EXECUTE:
      return s.prepared.execute(p, seq, sink);
    case Com.STMT_SEND_LONG_DATA:
      return s.prepared.longData(payload);
    case Com.STMT_CLOSE:
      return s.prepared.close(payload);
    case Com.STMT_RESET:
      return s.prepared.reset(p, seq, sink);
    case Com.STMT_FETCH:
      return s.prepared.fetch(p, seq, sink);
    default:
      return s.reply(buildErr({ errno: 1047, sqlState: '08S01', message: `Unknown command 0x${(cmd & 0xff).toString(16)}` }), seq);
  }
}

/** COM_QUERY: classify, route, forward, then settle the session's state from the answer. */
async function query(s: MysqlSession, p: MysqlPacket, seq: number, sink: ClientSink): Promise<void> {
  const text = p.payload.length <= MAX_CLASSIFIED ? p.payload.toString('utf8', 1) : null;
  const kill = text !== null ? KILL.exec(text) : null;
  if (kill) return killCommand(s, Number(kill[2]), kill[1]?.toLowerCase() === 'query', seq);
  const c = text !== null ? s.runtime.classifier.classify(text) : UNSURE;
  const verdict = mysqlEffectVerdict(c);
  const dependent = dependsOnPrevious(c, text);
  if (dependent) {
    // The previous statement's connection went back to its pool under pressure: answer the
    // exact reads from what it left; LAST_INSERT_ID() elsewhere is restored by connFor; what
    // cannot be restored fails loudly rather than reading another connection's value.
    const after = await s.lastAftermath();
    if (after && text !== null) {
      const answer = answerFromAftermath(text, after, s.status(), s.id.clientCaps);
      if (answer) {
        s.dropAftermath();
        s.runtime.counters.decision(c.class, 'transaction');
        s.socket.write(framed(answer, seq));
        return;
      }
      if (UNREPEATABLE.test(text) || after.lastInsertId === null) {
        s.dropAftermath();
        s.reply(buildErr(AFTERMATH_GONE), seq);
        return;
      }
    }
  }
  const h = await s.connFor(c, verdict === 'pin', dependent);
  const end = await s.run(h, p.raw, 'result', sink);
  if (!end.error) {
    if (verdict === 'record') {
      s.state.apply(c.session, text);
      s.state.copyTo(h.conn);
    }
    if (c.transaction?.op === 'set_transaction') s.keepForNextStatement();
  } else if (verdict === 'record') {
    // Part of a multi-statement text may have run: what it left on the connection is unknown.
    h.conn.dirty = true;
  }
  if (verdict === 'pin') s.pin();
  s.settle(h, c, end);
}

async function initDb(s: MysqlSession, p: MysqlPacket, sink: ClientSink): Promise<void> {
  const db = p.payload.toString('utf8', 1);
  const h = await s.connFor(READ, false, false);
  const end = await s.run(h, p.raw, 'result', sink);
  if (!end.error) {
    s.state.db = db;
    h.conn.db = db;
  }
  s.settle(h, READ, end);
}

/** A command answered by any node (COM_FIELD_LIST, COM_STATISTICS). */
async function passThrough(s: MysqlSession, p: MysqlPacket, kind: ResponseKind, sink: ClientSink): Promise<void> {
  const h = await s.connFor(READ, false, false);
  const end = await s.run(h, p.raw, kind, sink);
  s.settle(h, READ, end);
}
