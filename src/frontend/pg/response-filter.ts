/**
 * Matches a backend connection's responses to the messages the proxy sent it,
 * so that the proxy can
 *   - swallow the answers to messages it added itself (a Parse that prepares a
 *     client's named statement on a connection that lacks it, the Close of an
 *     evicted statement, the replay of the session's SET commands), and
 *   - insert answers to messages it did not forward (ParseComplete for a
 *     statement already prepared on the connection, CloseComplete for the
 *     client's Close of a named statement) at the exact place PostgreSQL would.
 *
 * Every message that gets an answer pushes one entry; the answer's last frame
 * (its terminator) pops it. Frames are walked by header only: rows are never
 * decoded or copied, and a run of frames that is forwarded is written as one
 * slice of the server's chunk.
 *
 * Error semantics follow PostgreSQL's extended protocol: an ErrorResponse ends
 * the message it answers and the server skips every later message up to the
 * next Sync, so their entries are dropped unanswered (their onSkip runs).
 */
export type EntryKind = 'parse' | 'bind' | 'describe' | 'execute' | 'close' | 'sync' | 'query' | 'func';

interface Entry {
  kind: EntryKind;
  /** Answer frames of this entry are dropped (the proxy sent the message itself). */
  swallow: boolean;
  /** An answer the proxy makes up; the server never sees the message. */
  synthetic: Buffer | null;
  /** The server refused or skipped the message (a failed Parse must not count as prepared). */
  onSkip?: () => void;
  /** TERMINATORS[kind], looked up once here: by kind per frame it was a megamorphic keyed load. */
  ends: ReadonlySet<number>;
}

const T_ERROR = 0x45; // 'E'
const T_NOTIFY = 0x41; // 'A' NotificationResponse: always reaches the client
const T_READY = 0x5a; // 'Z'

/** The frame types that end the answer to each kind of message. */
const TERMINATORS: Record<EntryKind, ReadonlySet<number>> = {
  parse: new Set([0x31]), // '1' ParseComplete
  bind: new Set([0x32]), // '2' BindComplete
  describe: new Set([0x54, 0x6e]), // 'T' RowDescription, 'n' NoData (after 't' for a statement)
  execute: new Set([0x43, 0x49, 0x73]), // 'C' CommandComplete, 'I' EmptyQueryResponse, 's' PortalSuspended
  close: new Set([0x33]), // '3' CloseComplete
  sync: new Set([T_READY]),
  query: new Set([T_READY]),
  func: new Set([T_READY]),
};

/** Kinds answered by ReadyForQuery; an error inside them does not end them. */
const UNTIL_READY = new Set<EntryKind>(['sync', 'query', 'func']);

const HEADER = 5;

export class ResponseFilter {
  private readonly entries: Entry[] = [];
  private head = 0;
  /** Entries that swallow or are synthetic and are still pending: 0 means pure pass-through. */
  private special = 0;
  // Walk state across chunks. The header of a frame split across chunks: allocated on the
  // first one, since a Buffer of its own costs ~0.3 kB in every idle session.
  private header: Buffer | null = null;
  private headerFill = 0;
  private bodyLeft = 0;
  private dropping = false;
  /** The server sent FATAL/PANIC: the connection is ending. */
  sawFatal = false;
  /** An ErrorResponse was answered since the last ReadyForQuery. */
  errorSinceReady = false;

  get pending(): number {
    return this.entries.length - this.head;
  }

  expect(kind: EntryKind, swallow = false, onSkip?: () => void): void {
    this.entries.push({ kind, swallow, synthetic: null, onSkip, ends: TERMINATORS[kind] });
    if (swallow) this.special++;
  }

  /** An answer made up by the proxy, sent once everything before it was answered. */
  synthesize(kind: EntryKind, frame: Buffer): void {
    this.entries.push({ kind, swallow: false, synthetic: frame, onSkip: undefined, ends: TERMINATORS[kind] });
    this.special++;
  }

  /** Synthetic answers now at the head (nothing before them outstanding), to send at once. */
  takeReadySynthetic(): Buffer[] {
    const out: Buffer[] = [];
    this.emitSynthetic(out);
    return out;
  }

  /** Forget everything (the connection is gone or returned). */
  reset(): void {
    this.entries.length = 0;
    this.head = 0;
    this.special = 0;
    this.headerFill = 0;
    this.bodyLeft = 0;
    this.dropping = false;
    this.errorSinceReady = false;
    this.sawFatal = false;
  }

  /**
   * Walks one chunk of server bytes and returns what the client must receive,
   * as slices of the chunk plus any synthetic frames, in order.
   */
  feed(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let pos = 0;
    let runStart = 0; // start of the current forwarded run
    const flushRun = (end: number) => {
      if (end > runStart) out.push(chunk.subarray(runStart, end));
    };
    const len = chunk.length;
    while (pos < len) {
      if (this.bodyLeft > 0) {
        const take = Math.min(this.bodyLeft, len - pos);
        pos += take;
        this.bodyLeft -= take;
        if (this.dropping) runStart = pos;
        continue;
      }
      // 1. Read a header (possibly split across chunks).
      let type: number;
      let length: number;
      const frameStart = pos;
      if (this.headerFill === 0 && len - pos >= HEADER) {
        type = chunk[pos]!;
        length = chunk.readInt32BE(pos + 1);
        pos += HEADER;
      } else {
        const take = Math.min(HEADER - this.headerFill, len - pos);
        const header = (this.header ??= Buffer.alloc(HEADER));
        chunk.copy(header, this.headerFill, pos, pos + take);
        this.headerFill += take;
        pos += take;
        if (this.headerFill < HEADER) {
          // The header's first bytes are held back until we know whether to forward them.
          flushRun(frameStart);
          runStart = pos;
          break;
        }
        this.headerFill = 0;
        type = header[0]!;
        length = header.readInt32BE(1);
      }
      // 2. Decide the frame's fate and keep the forwarded run contiguous.
      // A FATAL/PANIC error is the server ending this connection, not an answer the client's
      // session should see: the session reports the loss itself (08006) when the socket closes.
      const fatal = type === T_ERROR && isFatalStart(chunk, pos, length - 4);
      if (fatal) this.sawFatal = true;
      const drop = fatal || this.classify(type);
      const wasDropping = this.dropping;
      const splitHeader = frameStart + HEADER !== pos;
      if (drop) {
        flushRun(frameStart);
        runStart = pos;
      } else if (splitHeader || wasDropping || this.hasQueuedSynthetic) {
        flushRun(frameStart);
        this.flushSyntheticInto(out);
        if (splitHeader) out.push(Buffer.from(this.header!));
        runStart = splitHeader ? pos : frameStart;
      }
      this.dropping = drop;
      this.bodyLeft = Math.max(0, length - 4);
      if (drop) {
        const take = Math.min(this.bodyLeft, len - pos);
        pos += take;
        this.bodyLeft -= take;
        runStart = pos;
      }
    }
    if (!this.dropping) flushRun(pos);
    this.flushSyntheticInto(out);
    return out;
  }

  /** Synthetic frames that became due while classifying (sent before the next forwarded frame). */
  private queuedSynthetic: Buffer[] = [];

  private get hasQueuedSynthetic(): boolean {
    return this.queuedSynthetic.length > 0;
  }

  private flushSyntheticInto(out: Buffer[]): void {
    if (this.queuedSynthetic.length === 0) return;
    out.push(...this.queuedSynthetic);
    this.queuedSynthetic = [];
  }

  /** Pops synthetic entries at the head into `out`. */
  private emitSynthetic(out: Buffer[]): void {
    while (this.head < this.entries.length && this.entries[this.head]!.synthetic) {
      out.push(this.entries[this.head]!.synthetic!);
      this.pop();
    }
  }

  /** Returns true when the frame must be dropped; pops the entries it ends. */
  private classify(type: number): boolean {
    // Synthetic answers due before this frame.
    this.emitSynthetic(this.queuedSynthetic);
    const entry = this.head < this.entries.length ? this.entries[this.head]! : null;
    if (!entry) {
      // Outside any answer, an ErrorResponse is the server ending the connection (FATAL after
      // pg_terminate_backend, shutdown): it is about the pooled connection, not the client's
      // session, which carries on elsewhere. NoticeResponse, ParameterStatus, Notification pass.
      return type === T_ERROR;
    }
    const drop = entry.swallow && type !== T_NOTIFY;
    if (type === T_ERROR && !UNTIL_READY.has(entry.kind)) {
      // Even the error of a message the proxy added reaches the client: the client's own
      // next message (the Bind that needed that Parse) is skipped and must learn why.
      this.errorSinceReady = true;
      this.pop();
      entry.onSkip?.();
      // 3. The server skips everything up to the next Sync.
      while (this.head < this.entries.length && this.entries[this.head]!.kind !== 'sync') {
        const skipped = this.entries[this.head]!;
        this.pop();
        skipped.onSkip?.();
      }
      return false;
    }
    if (type === T_ERROR && !entry.swallow) this.errorSinceReady = true;
    if (entry.ends.has(type)) {
      this.pop();
      if (type === T_READY) {
        this.emitSynthetic(this.queuedSynthetic);
      }
    } else if (type === T_READY) {
      // Defensive: a ReadyForQuery always ends a Sync/Query; drop stale entries before it.
      while (this.head < this.entries.length && !UNTIL_READY.has(this.entries[this.head]!.kind)) this.pop();
      if (this.head < this.entries.length) this.pop();
    }
    return drop;
  }

  private pop(): void {
    const e = this.entries[this.head]!;
    if (e.swallow || e.synthetic) this.special--;
    this.head++;
    if (this.head === this.entries.length) {
      this.entries.length = 0;
      this.head = 0;
    } else if (this.head > 1024) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
  }

  /** True while some answers must be dropped or made up (otherwise chunks pass whole). */
  get active(): boolean {
    return this.special > 0;
  }
}

/**
 * Whether the ErrorResponse body starting at `pos` says FATAL or PANIC, judged by
 * its first two fields (S, localized, then V, never localized) as far as the chunk
 * holds them. A body split before that point counts as not fatal.
 */
function isFatalStart(chunk: Buffer, pos: number, bodyLength: number): boolean {
  const end = Math.min(chunk.length, pos + bodyLength);
  for (let field = 0; field < 2 && pos < end; field++) {
    const code = chunk[pos]!;
    const stop = chunk.indexOf(0, pos + 1);
    if (stop < 0 || stop >= end) return false;
    if (code === 0x53 || code === 0x56) {
      const v = chunk.toString('latin1', pos + 1, stop);
      if (v === 'FATAL' || v === 'PANIC') return true;
      if (code === 0x56) return false;
    }
    pos = stop + 1;
  }
  return false;
}
