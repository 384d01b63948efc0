import { ErrorCodes, SwitchyardError } from '../../errors.js';

/** One PostgreSQL protocol message, as views into the bytes received. */
export interface PgFrame {
  /** Message type byte; 0 for startup-phase frames, which have none. */
  type: number;
  /** The bytes after the 4-byte length. */
  payload: Buffer;
  /** The whole frame: type byte (if any), length and payload. */
  raw: Buffer;
}

const EMPTY = Buffer.alloc(0);

/**
 * Splits a byte stream into protocol messages. A frame that lies inside one
 * chunk is returned as subarray views of that chunk (no copy); only a frame
 * split across chunks is copied, once, when it completes. After a framing
 * error the reader is dead: the connection must be closed.
 */
export class PgFrameReader {
  private readonly maxMessageSize: number;
  private startup: boolean;
  /** Bytes of an incomplete frame (a copy), or EMPTY. */
  private pending: Buffer = EMPTY;
  private dead: SwitchyardError | null = null;

  constructor(opts: { maxMessageSize: number; startup?: boolean }) {
    this.maxMessageSize = opts.maxMessageSize;
    this.startup = opts.startup ?? false;
  }

  get buffered(): number {
    return this.pending.length;
  }

  setStartup(on: boolean): void {
    this.startup = on;
  }

  /** Bytes received but not yet framed; the reader forgets them. */
  takeRemainder(): Buffer {
    const rest = this.pending;
    this.pending = EMPTY;
    return rest;
  }

  push(chunk: Buffer): PgFrame[] {
    if (this.dead) throw this.dead;
    const frames: PgFrame[] = [];
    let buf = chunk;
    if (this.pending.length > 0) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = EMPTY;
    }
    let pos = 0;
    try {
      for (;;) {
        const header = this.startup ? 4 : 5;
        if (buf.length - pos < header) break;
        const lenAt = this.startup ? pos : pos + 1;
        const length = buf.readInt32BE(lenAt);
        this.checkLength(length);
        const total = (this.startup ? 0 : 1) + length;
        if (buf.length - pos < total) break;
        const raw = buf.subarray(pos, pos + total);
        frames.push({ type: this.startup ? 0 : buf[pos]!, payload: raw.subarray(header), raw });
        pos += total;
      }
    } catch (e) {
      this.dead = e as SwitchyardError;
      throw e;
    }
    if (pos < buf.length) {
      // Copy the tail: the chunk's memory may be reused by the caller once we return.
      this.pending = Buffer.from(buf.subarray(pos));
    }
    return frames;
  }

  private checkLength(length: number): void {
    const min = this.startup ? 8 : 4;
    if (length < min) {
      throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, `invalid message length ${length}`);
    }
    if (length > this.maxMessageSize) {
      throw new SwitchyardError(ErrorCodes.MESSAGE_TOO_LARGE, `message of ${length} bytes exceeds limits.max_message_size (${this.maxMessageSize})`);
    }
  }
}
