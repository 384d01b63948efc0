/**
 * Watches a server->client PostgreSQL byte stream without framing it into
 * copies. The proxy forwards each chunk it receives unchanged; this scanner
 * only walks the frame headers inside those chunks so the session knows when a
 * ReadyForQuery, a COPY start or a ParameterStatus went by.
 *
 * Why not PgFrameReader: a reader must hand out whole frames, so a DataRow
 * split across TCP chunks would be copied just to be skipped. Here, frames of
 * types nobody asked about are skipped by counting bytes, whatever their size.
 */
export type ScanEvent = (type: number, payload: Buffer | null) => void;

const HEADER = 5; // type byte + int32 length

export class PgStreamScanner {
  private readonly header = Buffer.alloc(HEADER);
  private headerFill = 0;
  /** Bytes of the current frame body still to come. */
  private bodyLeft = 0;
  private currentType = 0;
  /** Body of a captured frame, filled across chunks. */
  private capture: Buffer | null = null;
  private captureFill = 0;

  /**
   * @param wanted types whose payload the caller needs (e.g. 'Z', 'S'); their
   *   bodies are delivered whole. Every other frame is reported with a null
   *   payload once its header is seen.
   * @param maxCapture captured payloads larger than this are reported as null
   *   (a protection against a hostile server, not a protocol limit).
   */
  constructor(
    private readonly wanted: ReadonlySet<number>,
    private readonly onFrame: ScanEvent,
    private readonly maxCapture = 1 << 20,
  ) {}

  feed(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      if (this.bodyLeft > 0) {
        const take = Math.min(this.bodyLeft, len - pos);
        if (this.capture) {
          chunk.copy(this.capture, this.captureFill, pos, pos + take);
          this.captureFill += take;
        }
        pos += take;
        this.bodyLeft -= take;
        if (this.bodyLeft === 0) this.finishFrame();
        continue;
      }
      // 1. Fast path: a whole header inside this chunk.
      if (this.headerFill === 0 && len - pos >= HEADER) {
        this.currentType = chunk[pos]!;
        this.startBody(chunk.readInt32BE(pos + 1) - 4);
        pos += HEADER;
        // 2. Fast path: the whole (wanted) body is here too — no copy at all.
        if (this.capture && len - pos >= this.bodyLeft) {
          const body = chunk.subarray(pos, pos + this.bodyLeft);
          pos += this.bodyLeft;
          this.capture = null;
          this.bodyLeft = 0;
          this.onFrame(this.currentType, body);
          continue;
        }
        if (this.bodyLeft === 0) this.finishFrame();
        continue;
      }
      // 3. Slow path: a header split across chunks.
      const take = Math.min(HEADER - this.headerFill, len - pos);
      chunk.copy(this.header, this.headerFill, pos, pos + take);
      this.headerFill += take;
      pos += take;
      if (this.headerFill === HEADER) {
        this.headerFill = 0;
        this.currentType = this.header[0]!;
        this.startBody(this.header.readInt32BE(1) - 4);
        if (this.bodyLeft === 0) this.finishFrame();
      }
    }
  }

  /** True when the stream stopped exactly at a frame boundary. */
  get atBoundary(): boolean {
    return this.bodyLeft === 0 && this.headerFill === 0;
  }

  reset(): void {
    this.headerFill = 0;
    this.bodyLeft = 0;
    this.capture = null;
    this.captureFill = 0;
  }

  private startBody(bodyLength: number): void {
    // A server never sends a length below 4; treat it as an empty body rather than looping.
    this.bodyLeft = bodyLength > 0 ? bodyLength : 0;
    if (this.wanted.has(this.currentType) && this.bodyLeft <= this.maxCapture) {
      this.capture = Buffer.allocUnsafe(this.bodyLeft);
      this.captureFill = 0;
    } else {
      // Unwanted (or oversized) frames are reported as soon as their header is seen.
      this.capture = null;
      this.onFrame(this.currentType, null);
    }
  }

  private finishFrame(): void {
    const captured = this.capture;
    this.capture = null;
    if (captured) this.onFrame(this.currentType, captured);
  }
}
