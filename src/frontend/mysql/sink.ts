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
   * The run of contiguous packets being joined: the chunk they are in and the run's
   * offsets there. The joined view is made once per run (at the next gap or at flush), not
   * once per packet: a 100-row result is one Buffer, not 100.
   */
  private runSource: Buffer | null = null;
  private runStart = 0;
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
    if (this.runSource === p.source && this.runEnd === p.start) {
      this.runEnd = p.end;
      return;
    }
    this.closeRun();
    this.runSource = p.source;
    this.runStart = p.start;
    this.runEnd = p.end;
  }

  private closeRun(): void {
    const source = this.runSource;
    if (source === null) return;
    this.runSource = null;
    this.parts.push(this.runStart === 0 && this.runEnd === source.length ? source : source.subarray(this.runStart, this.runEnd));
  }

  flush(): boolean {
    this.closeRun();
    const parts = this.parts;
    if (parts.length === 0) return false;
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
    // Bytes the client socket did not take at once still point into the received chunk.
    return socket.writableLength > 0;
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
  flush(): boolean {
    return this.packets.length > 0;
  }
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
