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
/** A startup-phase length counts itself plus at least the int32 protocol code. */
const MIN_STARTUP_LENGTH = 8;
/** A typed message's length counts itself. */
const MIN_TYPED_LENGTH = 4;

/**
 * Splits a byte stream into protocol messages.
 *
 * Memory rules (this sits on the hot path of every client and server byte):
 * - a frame that lies inside one chunk is returned as subarray views of that
 *   chunk, no copy;
 * - a frame split across chunks is copied exactly once, when its last byte
 *   arrives; until then the reader keeps views of the pieces, so a caller must
 *   not reuse a chunk's memory after pushing it (Node's sockets never do);
 * - no payload is ever decoded here.
 *
 * Two ways to read: `push(chunk)` returns every frame the chunk completes;
 * `feed(chunk)` then `next()` hands out one frame at a time, which lets the
 * caller switch framing mode (setStartup) or stop (takeRemainder) exactly at a
 * frame boundary even when several frames arrived in one chunk.
 *
 * After a framing error the reader is dead (every later call throws the same
 * error): the stream position is lost, so the connection must be closed.
 */
export class PgFrameReader {
  private readonly maxMessageSize: number;
  private startup: boolean;

  /** The chunk being read and the read position inside it. */
  private chunk: Buffer = EMPTY;
  private pos = 0;
  /** Chunks fed while `chunk` still had unread bytes (only with feed/next). */
  private readonly queued: Buffer[] = [];

  /**
   * Assembly of a frame that spans chunks: its header bytes (copied; allocated on the first
   * split header, since a Buffer of its own costs ~0.3 kB in every idle session) ...
   */
  private head: Buffer | null = null;
  private headFill = 0;
  /** ... its header size, fixed when assembly starts (setStartup may change mode meanwhile) ... */
  private assemblyHeaderSize = 0;
  /** ... its total size once the header is complete (-1 before) ... */
  private assemblySize = -1;
  /** ... and views of its body pieces, copied together on completion. */
  private bodyParts: Buffer[] = [];
  private bodyFill = 0;

  private failure: SwitchyardError | null = null;

  constructor(opts: { maxMessageSize: number; startup?: boolean }) {
    this.maxMessageSize = opts.maxMessageSize;
    this.startup = opts.startup ?? false;
  }

  /** Bytes received but not yet returned as frames (an incomplete frame, plus unread input with feed/next). */
  get buffered(): number {
    let n = this.headFill + this.bodyFill + (this.chunk.length - this.pos);
    for (const q of this.queued) n += q.length;
    return n;
  }

  /** Switches framing mode; takes effect at the next frame boundary. */
  setStartup(on: boolean): void {
    this.startup = on;
  }

  /** Every frame the chunk completes, in order. Throws PROTOCOL_VIOLATION or MESSAGE_TOO_LARGE. */
  push(chunk: Buffer): PgFrame[] {
    this.feed(chunk);
    const frames: PgFrame[] = [];
    for (let f = this.next(); f !== null; f = this.next()) frames.push(f);
    return frames;
  }

  /** Hands a chunk to the reader without framing it yet; read frames with next(). */
  feed(chunk: Buffer): void {
    if (this.failure) throw this.failure;
    if (chunk.length === 0) return;
    if (this.pos >= this.chunk.length) {
      this.chunk = chunk;
      this.pos = 0;
    } else {
      this.queued.push(chunk);
    }
  }

  /** The next complete frame, or null when more bytes are needed. */
  next(): PgFrame | null {
    if (this.failure) throw this.failure;
    try {
      return this.readFrame();
    } catch (e) {
      this.failure = e instanceof SwitchyardError ? e : new SwitchyardError(ErrorCodes.INTERNAL, String(e), { cause: e });
      this.clear();
      throw this.failure;
    }
  }

  /**
   * Every byte received but not yet returned as a frame, in order; the reader
   * forgets them. Used to hand the rest of a stream to the next owner, and to
   * check that nothing was sent in clear before a TLS handshake.
   */
  takeRemainder(): Buffer {
    const parts: Buffer[] = [];
    if (this.headFill > 0) parts.push(Buffer.from(this.head!.subarray(0, this.headFill)));
    parts.push(...this.bodyParts);
    if (this.pos < this.chunk.length) parts.push(this.chunk.subarray(this.pos));
    parts.push(...this.queued);
    this.clear();
    if (parts.length === 0) return EMPTY;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  private clear(): void {
    this.chunk = EMPTY;
    this.pos = 0;
    this.queued.length = 0;
    this.resetAssembly();
  }

  private resetAssembly(): void {
    this.headFill = 0;
    this.assemblySize = -1;
    this.bodyParts = [];
    this.bodyFill = 0;
  }

  private readFrame(): PgFrame | null {
    for (;;) {
      const available = this.chunk.length - this.pos;
      if (available === 0) {
        const nextChunk = this.queued.shift();
        if (!nextChunk) {
          this.chunk = EMPTY; // drop the reference so a drained chunk can be collected
          this.pos = 0;
          return null;
        }
        this.chunk = nextChunk;
        this.pos = 0;
        continue;
      }
      // 1. Fast path: at a frame boundary with the whole frame inside this chunk: slice, no copy.
      if (this.headFill === 0) {
        const headerSize = this.startup ? 4 : 5;
        if (available >= headerSize) {
          const size = this.frameSize(this.chunk, this.pos, this.startup);
          if (available >= size) {
            const raw = this.chunk.subarray(this.pos, this.pos + size);
            this.pos += size;
            return { type: this.startup ? 0 : raw[0]!, payload: raw.subarray(headerSize), raw };
          }
        }
        this.assemblyHeaderSize = headerSize;
      }
      // 2. Slow path: the frame spans chunks; gather this chunk's share of it.
      const frame = this.assemble();
      if (frame) return frame;
    }
  }

  /** Takes this chunk's bytes of a spanning frame; returns the frame once complete. */
  private assemble(): PgFrame | null {
    const headerSize = this.assemblyHeaderSize;
    const startup = headerSize === 4;
    const head = (this.head ??= Buffer.alloc(5));
    if (this.headFill < headerSize) {
      const take = Math.min(headerSize - this.headFill, this.chunk.length - this.pos);
      this.chunk.copy(head, this.headFill, this.pos, this.pos + take);
      this.headFill += take;
      this.pos += take;
      if (this.headFill < headerSize) return null;
      this.assemblySize = this.frameSize(head, 0, startup);
    }
    const take = Math.min(this.assemblySize - headerSize - this.bodyFill, this.chunk.length - this.pos);
    if (take > 0) {
      this.bodyParts.push(this.chunk.subarray(this.pos, this.pos + take));
      this.bodyFill += take;
      this.pos += take;
    }
    if (headerSize + this.bodyFill < this.assemblySize) return null;
    // 3. Complete: the one copy a spanning frame costs.
    const raw = Buffer.allocUnsafe(this.assemblySize);
    head.copy(raw, 0, 0, headerSize);
    let at = headerSize;
    for (const part of this.bodyParts) {
      part.copy(raw, at);
      at += part.length;
    }
    this.resetAssembly();
    return { type: startup ? 0 : raw[0]!, payload: raw.subarray(headerSize), raw };
  }

  /** Total frame size (type byte included) from the header at `at`, after checking its length field. */
  private frameSize(buf: Buffer, at: number, startup: boolean): number {
    const length = buf.readInt32BE(startup ? at : at + 1);
    const min = startup ? MIN_STARTUP_LENGTH : MIN_TYPED_LENGTH;
    if (length < min) {
      throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, `invalid ${startup ? 'startup packet' : 'message'} length ${length}`);
    }
    if (length > this.maxMessageSize) {
      throw new SwitchyardError(
        ErrorCodes.MESSAGE_TOO_LARGE,
        `message of ${length} bytes exceeds limits.max_message_size (${this.maxMessageSize})`,
      );
    }
    return startup ? length : length + 1;
  }
}
