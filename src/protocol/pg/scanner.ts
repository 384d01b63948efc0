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
  /** 1 at the wanted types: a table, not a Set lookup per frame. */
  private readonly wantedTypes = new Uint8Array(256);

  /**
   * @param wanted types whose payload the caller needs (e.g. 'Z', 'S'); their
   *   bodies are delivered whole. Every other frame is reported with a null
   *   payload once its header is seen.
   * @param maxCapture captured payloads larger than this are reported as null
   *   (a protection against a hostile server, not a protocol limit).
   */
  constructor(
    wanted: ReadonlySet<number>,
    private readonly onFrame: ScanEvent,
    private readonly maxCapture = 1 << 20,
  ) {
    for (const t of wanted) this.wantedTypes[t & 0xff] = 1;
  }

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
      // 1. Fast path: a whole frame inside this chunk: a wanted body is a view, nothing is allocated
      //    (a ReadyForQuery ends every transaction).
      if (this.headerFill === 0 && len - pos >= HEADER) {
        const type = chunk[pos]!;
        const bodyLength = bodyLengthOf(chunk.readInt32BE(pos + 1));
        pos += HEADER;
        if (len - pos >= bodyLength) {
          pos += bodyLength;
          this.onFrame(type, this.wants(type, bodyLength) ? chunk.subarray(pos - bodyLength, pos) : null);
          continue;
        }
        // 2. The body goes on in later chunks.
        this.currentType = type;
        this.startBody(bodyLength);
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
        this.startBody(bodyLengthOf(this.header.readInt32BE(1)));
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

  private wants(type: number, bodyLength: number): boolean {
    return this.wantedTypes[type] === 1 && bodyLength <= this.maxCapture;
  }

  private startBody(bodyLength: number): void {
    this.bodyLeft = bodyLength;
    if (this.wants(this.currentType, bodyLength)) {
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

/** A frame's body length from its length field; a server never sends less than 4: an empty body rather than a loop. */
function bodyLengthOf(lengthField: number): number {
  return lengthField > 4 ? lengthField - 4 : 0;
}
