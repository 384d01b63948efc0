import { ErrorCodes, SwitchyardError } from '../../errors.js';
import { MAX_PACKET_PAYLOAD } from './constants.js';

/**
 * One logical MySQL packet (a split packet's pieces already joined).
 *
 * Made once per packet on every forwarded result row, so it holds offsets into the chunk
 * it came from and makes its Buffer views only when asked: a proxied row is looked at by
 * its first byte and length (the response scanner), joined to its neighbours by offsets
 * (the client sink) and written out as part of one view per run. Each view costs a typed
 * array allocation; two per row were the largest item of a 100-row resultset's cost.
 */
export class MysqlPacket {
  private rawView: Buffer | null = null;
  private payloadView: Buffer | null;

  constructor(
    /** Sequence id of the first physical packet. */
    readonly seq: number,
    /** Sequence id of the last physical packet (= seq unless split). */
    readonly lastSeq: number,
    /** The chunk the packet's bytes are in, and where: [start, end) holds every physical header and piece. */
    readonly source: Buffer,
    readonly start: number,
    readonly end: number,
    /** A split packet's joined payload (copied once); null: the payload is source[start + 4, end). */
    joined: Buffer | null = null,
  ) {
    this.payloadView = joined;
  }

  /** The bytes as received: every physical header and piece, ready to forward untouched. */
  get raw(): Buffer {
    return (this.rawView ??= this.source.subarray(this.start, this.end));
  }

  /** The logical payload (for a split packet: its pieces joined). */
  get payload(): Buffer {
    return (this.payloadView ??= this.source.subarray(this.start + 4, this.end));
  }

  /** Payload length without making a view. */
  get payloadLength(): number {
    return this.payloadView !== null ? this.payloadView.length : this.end - this.start - 4;
  }

  /** First payload byte, or -1 for an empty payload. */
  get head(): number {
    if (this.payloadView !== null) return this.payloadView.length > 0 ? this.payloadView[0]! : -1;
    return this.end - this.start > 4 ? this.source[this.start + 4]! : -1;
  }

}

const EMPTY = Buffer.alloc(0);

/**
 * Splits a byte stream into logical MySQL packets.
 *
 * Hot-path rules, as in the PostgreSQL reader: a packet that lies inside one
 * chunk is returned as views of that chunk (no copy); a packet spanning chunks
 * is copied once when it completes; payloads are never decoded here. A payload
 * of exactly 0xffffff bytes continues in the next physical packet (16MB split
 * packets); the reader joins them and checks that their sequence ids follow.
 *
 * After an error the reader is dead: the stream position is lost.
 */
export class MysqlPacketReader {
  private maxMessageSize: number;
  private pending: Buffer[] = [];
  private pendingLen = 0;
  /** Bytes the pending packet needs at least before parsing is worth trying (avoids re-joining per chunk). */
  private needBytes = 0;
  private failure: SwitchyardError | null = null;

  constructor(opts: { maxMessageSize: number }) {
    this.maxMessageSize = opts.maxMessageSize;
  }

  /** Raises (or lowers) the size limit: a login is read with a small one, the command phase with limits.max_message_size. */
  setMaxMessageSize(n: number): void {
    this.maxMessageSize = n;
  }

  get buffered(): number {
    return this.pendingLen;
  }

  /** Every logical packet the chunk completes, in order. */
  push(chunk: Buffer): MysqlPacket[] {
    if (this.failure) throw this.failure;
    let buf: Buffer;
    if (this.pendingLen === 0) buf = chunk;
    else if (this.pendingLen + chunk.length < this.needBytes) {
      this.pending.push(chunk);
      this.pendingLen += chunk.length;
      return [];
    } else {
      this.pending.push(chunk);
      buf = Buffer.concat(this.pending, this.pendingLen + chunk.length);
      this.pending = [];
      this.pendingLen = 0;
    }
    const out: MysqlPacket[] = [];
    let pos = 0;
    try {
      for (;;) {
        const end = this.logicalEnd(buf, pos);
        if (end < 0) break;
        out.push(this.makePacket(buf, pos, end));
        pos = end;
      }
    } catch (err) {
      this.failure = err as SwitchyardError;
      throw err;
    }
    if (pos < buf.length) {
      // Keep a view; the copy happens once, when the packet completes.
      const rest = buf.subarray(pos);
      this.pending.push(rest);
      this.pendingLen = rest.length;
    }
    return out;
  }

  /** End offset of the logical packet starting at pos, or -1 if incomplete. Checks size limits early. */
  private logicalEnd(buf: Buffer, start: number): number {
    let pos = start;
    let total = 0;
    let expectSeq = -1;
    for (;;) {
      if (buf.length - pos < 4) {
        this.needBytes = pos - start + 4;
        return -1;
      }
      const len = buf.readUIntLE(pos, 3);
      const seq = buf[pos + 3]!;
      if (expectSeq >= 0 && seq !== expectSeq) {
        throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, `mysql split packet out of sequence (${seq}, expected ${expectSeq})`);
      }
      total += len;
      if (total > this.maxMessageSize) {
        throw new SwitchyardError(ErrorCodes.MESSAGE_TOO_LARGE, `mysql packet of ${total}+ bytes exceeds ${this.maxMessageSize}`);
      }
      if (buf.length - pos - 4 < len) {
        this.needBytes = pos - start + 4 + len;
        return -1;
      }
      pos += 4 + len;
      if (len < MAX_PACKET_PAYLOAD) return pos;
      expectSeq = (seq + 1) & 0xff;
    }
  }

  private makePacket(buf: Buffer, start: number, end: number): MysqlPacket {
    const seq = buf[start + 3]!;
    const firstLen = buf.readUIntLE(start, 3);
    if (firstLen < MAX_PACKET_PAYLOAD) return new MysqlPacket(seq, seq, buf, start, end);
    const pieces: Buffer[] = [];
    let pos = start;
    let lastSeq = seq;
    while (pos < end) {
      const len = buf.readUIntLE(pos, 3);
      lastSeq = buf[pos + 3]!;
      pieces.push(buf.subarray(pos + 4, pos + 4 + len));
      pos += 4 + len;
    }
    return new MysqlPacket(seq, lastSeq, buf, start, end, pieces.length ? Buffer.concat(pieces) : EMPTY);
  }
}

/**
 * Frames a payload as one or more physical packets starting at sequence id
 * `seq`; payloads of 0xffffff bytes and more are split, with an empty
 * terminator when the length is an exact multiple. Returns the bytes and the
 * next sequence id to use.
 */
export function framePacket(payload: Buffer, seq: number): { bytes: Buffer; nextSeq: number } {
  if (payload.length < MAX_PACKET_PAYLOAD) {
    const b = Buffer.allocUnsafe(4 + payload.length);
    b.writeUIntLE(payload.length, 0, 3);
    b[3] = seq & 0xff;
    payload.copy(b, 4);
    return { bytes: b, nextSeq: (seq + 1) & 0xff };
  }
  const parts: Buffer[] = [];
  let pos = 0;
  let s = seq;
  for (;;) {
    const len = Math.min(MAX_PACKET_PAYLOAD, payload.length - pos);
    const h = Buffer.allocUnsafe(4);
    h.writeUIntLE(len, 0, 3);
    h[3] = s & 0xff;
    parts.push(h, payload.subarray(pos, pos + len));
    pos += len;
    s = (s + 1) & 0xff;
    if (len < MAX_PACKET_PAYLOAD) break;
  }
  return { bytes: Buffer.concat(parts), nextSeq: s };
}
