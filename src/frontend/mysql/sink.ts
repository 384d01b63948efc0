import type { MysqlPacket } from '../../protocol/mysql/index.js';
import type { MysqlResponseSink } from '../../backend/mysql/conn.js';
import type { MysqlBackendConn } from '../../backend/mysql/conn.js';
import type net from 'node:net';

/** What a sink needs of the session. */
export interface SinkOwner {
  readonly socket: net.Socket;
  running: MysqlBackendConn | null;
  /** A server connection paused because the client socket is full; resumed at the client's 'drain'. */
  paused: MysqlBackendConn | null;
  startInfile(conn: MysqlBackendConn): void;
}

/**
 * Forwards the packets of a server answer to the client as raw bytes.
 * Consecutive packets of one received chunk are contiguous views of it: they
 * are joined back into one view (no copy), so a chunk of rows costs one write.
 * `delta` shifts sequence ids when the command sent to the server was framed
 * differently from the client's (a rewritten COM_STMT_EXECUTE); 0 otherwise.
 */
export class ClientSink implements MysqlResponseSink {
  forwarded = false;
  /** Sequence id after the last forwarded packet (for a closing ERR). */
  nextSeq = 0;
  delta = 0;
  private parts: Buffer[] = [];
  /**
   * The run of contiguous packets being joined: its first packet's view and where the
   * run ends in that view's memory. The joined view is made once per run (at the next
   * gap or at flush), not once per packet: a 100-row result is one Buffer, not 100.
   */
  private run: Buffer | null = null;
  private runEnd = 0;

  constructor(private readonly owner: SinkOwner) {}

  packet(p: MysqlPacket): void {
    this.forwarded = true;
    this.nextSeq = (p.lastSeq + 1 + this.delta) & 0xff;
    if (this.delta !== 0) {
      this.closeRun();
      this.parts.push(reseq(p.raw, this.delta));
      return;
    }
    const raw = p.raw;
    if (this.run !== null && this.run.buffer === raw.buffer && this.runEnd === raw.byteOffset) {
      this.runEnd += raw.length;
      return;
    }
    this.closeRun();
    this.run = raw;
    this.runEnd = raw.byteOffset + raw.length;
  }

  private closeRun(): void {
    const run = this.run;
    if (run === null) return;
    this.run = null;
    const length = this.runEnd - run.byteOffset;
    this.parts.push(length === run.length ? run : Buffer.from(run.buffer, run.byteOffset, length));
  }

  flush(): void {
    this.closeRun();
    const parts = this.parts;
    if (parts.length === 0) return;
    this.parts = [];
    const socket = this.owner.socket;
    let ok = true;
    if (parts.length === 1) ok = socket.write(parts[0]!);
    else {
      socket.cork();
      for (const b of parts) ok = socket.write(b);
      socket.uncork();
    }
    const conn = this.owner.running;
    if (!ok && conn) {
      conn.pause();
      this.owner.paused = conn;
    }
  }

  localInfile(): void {
    const conn = this.owner.running;
    if (conn) this.owner.startInfile(conn);
  }
}

/** Collects an answer's packets instead of forwarding them (a COM_STMT_PREPARE whose id must be rewritten). */
export class CollectSink implements MysqlResponseSink {
  readonly packets: MysqlPacket[] = [];
  packet(p: MysqlPacket): void {
    this.packets.push(p);
  }
  flush(): void {}
}

/** A copy of raw packet bytes (possibly several physical packets) with every sequence id shifted by `delta`. */
export function reseq(raw: Buffer, delta: number): Buffer {
  const out = Buffer.from(raw);
  let pos = 0;
  while (pos + 4 <= out.length) {
    const len = out.readUIntLE(pos, 3);
    out[pos + 3] = (out[pos + 3]! + delta) & 0xff;
    pos += 4 + len;
  }
  return out;
}
