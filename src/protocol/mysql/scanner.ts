import { ErrorCodes, SwitchyardError } from '../../errors.js';
import { EOF_HEADER, ERR_HEADER, LOCAL_INFILE_HEADER, MAX_PACKET_PAYLOAD, OK_HEADER, Status } from './constants.js';
import { PayloadReader } from './lenenc.js';

/** What the scanner learned from one server packet. */
export type ScanEvent =
  /** More packets of this response follow. */
  | { kind: 'more' }
  /** The server asks for a LOCAL INFILE file; the client's packets go next, then the response continues. */
  | { kind: 'local_infile' }
  /** The response ended; status is the last server status (null after an ERR, which carries none). */
  | { kind: 'done'; status: number | null; error: boolean };

/** The events without data are shared: one per packet would be an allocation per row. */
const MORE: ScanEvent = Object.freeze({ kind: 'more' });
const LOCAL_INFILE: ScanEvent = Object.freeze({ kind: 'local_infile' });

/** What the hot path needs of a packet: its first byte and length, the payload only when asked. */
interface ScannedPacket {
  readonly head: number;
  readonly payloadLength: number;
  readonly payload: Buffer;
}

type State = 'first' | 'columns' | 'columns_eof' | 'rows' | 'prep_params' | 'prep_defs' | 'field_list' | 'single' | 'done';

/**
 * What kind of response a command gets:
 * - result: OK, ERR, LOCAL INFILE request or (text or binary) resultsets (COM_QUERY, COM_STMT_EXECUTE, most others);
 * - prepare: the COM_STMT_PREPARE answer;
 * - rows: rows up to EOF/OK (COM_STMT_FETCH);
 * - field_list: column definitions up to EOF/OK (COM_FIELD_LIST);
 * - single: exactly one packet (COM_STATISTICS answers with a bare string).
 */
export type ResponseKind = 'result' | 'prepare' | 'rows' | 'field_list' | 'single';

/**
 * Walks the server's packets of one command's response (text or binary
 * resultsets, multi-results, OK/ERR, LOCAL INFILE, the COM_STMT_PREPARE answer)
 * to know where it ends and the final status flags. Rows are never decoded:
 * only first bytes and lengths of packets are looked at.
 *
 * A 0xfe packet ends rows only when short: an EOF is under 9 bytes, and with
 * DEPRECATE_EOF the terminating OK is under 0xffffff bytes (a row starting
 * with 0xfe is a lenenc of 2^24+ bytes, so it is longer).
 */
export class MysqlResponseScanner {
  private state: State = 'done';
  private remaining = 0;
  lastStatus: number | null = null;

  constructor(private readonly deprecateEof: boolean) {}

  /** Starts a response to a command; `prepare` for COM_STMT_PREPARE. */
  begin(kind: ResponseKind = 'result'): void {
    this.state = kind === 'prepare' ? 'prep_params' : kind === 'result' ? 'first' : kind;
    this.remaining = 0;
  }

  get idle(): boolean {
    return this.state === 'done';
  }

  /**
   * Feeds one logical server packet. Column definitions and rows, nearly every packet of a
   * resultset, are decided by first byte and length alone, without a view of the payload.
   */
  nextPacket(p: ScannedPacket): ScanEvent {
    if (this.state === 'columns') {
      if (--this.remaining === 0) this.state = this.deprecateEof ? 'rows' : 'columns_eof';
      return MORE;
    }
    if (this.state === 'rows') {
      const h = p.head;
      if (h !== ERR_HEADER && h !== EOF_HEADER) return MORE;
      if (h === EOF_HEADER && !(this.deprecateEof ? p.payloadLength < MAX_PACKET_PAYLOAD && p.payloadLength >= 7 : p.payloadLength < 9)) return MORE;
    }
    return this.next(p.payload);
  }

  /** Feeds one logical server packet payload. */
  next(p: Buffer): ScanEvent {
    const h = p.length > 0 ? p[0]! : -1;
    switch (this.state) {
      case 'done':
        throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'mysql server packet outside a response');
      case 'first':
        if (h === ERR_HEADER) return this.end(null, true);
        if (h === OK_HEADER) return this.afterOk(p);
        if (h === LOCAL_INFILE_HEADER) return LOCAL_INFILE;
        this.remaining = new PayloadReader(p).lenenc();
        if (this.remaining === 0) throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'mysql resultset of 0 columns');
        this.state = 'columns';
        return MORE;
      case 'columns':
        if (--this.remaining === 0) this.state = this.deprecateEof ? 'rows' : 'columns_eof';
        return MORE;
      case 'columns_eof':
        // A COM_STMT_EXECUTE that opened a cursor ends here: rows come only with COM_STMT_FETCH.
        if (h === EOF_HEADER && p.length >= 5 && p.readUInt16LE(3) & Status.CURSOR_EXISTS) return this.afterEof(p);
        this.state = 'rows';
        return MORE;
      case 'rows':
        if (h === ERR_HEADER) return this.end(null, true);
        if (h === EOF_HEADER && (this.deprecateEof ? p.length < MAX_PACKET_PAYLOAD && p.length >= 7 : p.length < 9)) {
          return this.deprecateEof ? this.afterOk(p) : this.afterEof(p);
        }
        return MORE;
      case 'prep_params': {
        if (h === ERR_HEADER) return this.end(null, true);
        // COM_STMT_PREPARE_OK: 0x00, stmt id u32, columns u16, params u16, filler, warnings u16;
        // then param definitions and column definitions, each list followed by an EOF
        // unless empty or DEPRECATE_EOF. Only their count matters here.
        const r = new PayloadReader(p, 5);
        const cols = r.u16();
        const params = r.u16();
        const eof = this.deprecateEof ? 0 : 1;
        this.remaining = params + (params > 0 ? eof : 0) + cols + (cols > 0 ? eof : 0);
        this.state = 'prep_defs';
        return this.remaining === 0 ? this.end(this.lastStatus, false) : { kind: 'more' };
      }
      case 'single':
        return h === ERR_HEADER ? this.end(null, true) : this.end(this.lastStatus, false);
      case 'field_list':
        if (h === ERR_HEADER) return this.end(null, true);
        // Column definitions start with the lenenc catalog "def" (0x03): a 0xfe ends the list.
        if (h === EOF_HEADER) return p.length < 9 ? this.afterEof(p) : this.afterOk(p);
        return MORE;
      case 'prep_defs':
        return --this.remaining === 0 ? this.end(this.lastStatus, false) : { kind: 'more' };
    }
  }

  private afterOk(p: Buffer): ScanEvent {
    const r = new PayloadReader(p, 1);
    r.lenenc();
    r.lenenc();
    return this.afterStatus(r.u16());
  }

  private afterEof(p: Buffer): ScanEvent {
    return this.afterStatus(p.length >= 5 ? p.readUInt16LE(3) : 0);
  }

  private afterStatus(status: number): ScanEvent {
    this.lastStatus = status;
    if (status & Status.MORE_RESULTS_EXISTS) {
      this.state = 'first';
      return MORE;
    }
    return this.end(status, false);
  }

  private end(status: number | null, error: boolean): ScanEvent {
    this.state = 'done';
    if (status !== null) this.lastStatus = status;
    return { kind: 'done', status, error };
  }
}
