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

  constructor(private readonly owner: SinkOwner) {}

  packet(p: MysqlPacket): void {
    this.forwarded = true;
    this.nextSeq = (p.lastSeq + 1 + this.delta) & 0xff;
    if (this.delta !== 0) {
      this.parts.push(reseq(p.raw, this.delta));
      return;
    }
    const last = this.parts[this.parts.length - 1];
    if (last && last.buffer === p.raw.buffer && last.byteOffset + last.length === p.raw.byteOffset) {
      this.parts[this.parts.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + p.raw.length);
    } else this.parts.push(p.raw);
  }

  flush(): void {
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
