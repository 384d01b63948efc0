import { ErrorCodes, SwitchyardError } from '../../errors.js';

/*
 * PostgreSQL protocol 3.0 messages: parsers for what routing and login need,
 * builders for what the proxy itself says. Parsers read payloads (the bytes
 * after the length) and throw PROTOCOL_VIOLATION on malformed input.
 */

function violation(what: string): SwitchyardError {
  return new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, `malformed ${what} message`);
}

/** Reads NUL-terminated strings and integers from a payload, bounds-checked. */
class Cursor {
  pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}
  cstring(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw violation(this.what);
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }
  int32(): number {
    if (this.pos + 4 > this.buf.length) throw violation(this.what);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  int16(): number {
    if (this.pos + 2 > this.buf.length) throw violation(this.what);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  byte(): number {
    if (this.pos >= this.buf.length) throw violation(this.what);
    return this.buf[this.pos++]!;
  }
  bytes(n: number): Buffer {
    if (n < 0 || this.pos + n > this.buf.length) throw violation(this.what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  rest(): Buffer {
    const b = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return b;
  }
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  /** The message must end here: PostgreSQL rejects trailing bytes too (pq_getmsgend). */
  end(): void {
    if (this.pos !== this.buf.length) throw violation(this.what);
  }
}

// ---- frontend messages (client -> server) ----------------------------------

export type StartupPacket =
  | { kind: 'startup'; major: number; minor: number; params: Record<string, string> }
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; pid: number; secret: number }
  | { kind: 'unsupported'; code: number };

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;

/**
 * The first frame of a connection (no type byte): a StartupMessage, or one of
 * the special requests told apart by their protocol code. Protocol 3.x with
 * any minor version is 'startup' (the caller answers a minor > 0 with
 * NegotiateProtocolVersion); other codes are 'unsupported'.
 */
export function parseStartupPacket(payload: Buffer): StartupPacket {
  const c = new Cursor(payload, 'startup');
  const code = c.int32();
  if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
    c.end();
    return { kind: code === SSL_REQUEST ? 'ssl' : 'gssenc' };
  }
  if (code === CANCEL_REQUEST) {
    // Protocol 3.0 keys are 4 bytes; switchyard negotiates 3.0, so a longer key is malformed here.
    const cancel = { kind: 'cancel' as const, pid: c.int32(), secret: c.int32() };
    c.end();
    return cancel;
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major !== 3) return { kind: 'unsupported', code: code >>> 0 };
  // A null prototype: a parameter named __proto__ must stay a plain key.
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  for (;;) {
    const name = c.cstring();
    if (name === '') break;
    params[name] = c.cstring();
  }
  c.end();
  return { kind: 'startup', major, minor, params };
}

export function parseQuery(payload: Buffer): string {
  const c = new Cursor(payload, 'Query');
  const sql = c.cstring();
  c.end();
  return sql;
}

export function parseParse(payload: Buffer): { name: string; query: string; paramTypes: number[] } {
  const c = new Cursor(payload, 'Parse');
  const name = c.cstring();
  const query = c.cstring();
  const n = c.int16();
  if (n < 0) throw violation('Parse');
  const paramTypes: number[] = [];
  // Type OIDs are unsigned 32-bit on the wire.
  for (let i = 0; i < n; i++) paramTypes.push(c.int32() >>> 0);
  c.end();
  return { name, query, paramTypes };
}

export function parseBindHeader(payload: Buffer): { portal: string; statement: string } {
  const c = new Cursor(payload, 'Bind');
  return { portal: c.cstring(), statement: c.cstring() };
}

export function parseDescribeOrClose(payload: Buffer): { kind: 'S' | 'P'; name: string } {
  const c = new Cursor(payload, 'Describe/Close');
  const k = String.fromCharCode(c.byte());
  if (k !== 'S' && k !== 'P') throw violation('Describe/Close');
  const name = c.cstring();
  c.end();
  return { kind: k, name };
}

export function parseExecute(payload: Buffer): { portal: string; maxRows: number } {
  const c = new Cursor(payload, 'Execute');
  const portal = c.cstring();
  const maxRows = c.int32();
  c.end();
  return { portal, maxRows };
}

/** A cleartext or md5 PasswordMessage (SASL responses share the 'p' type but not this layout). */
export function parsePasswordMessage(payload: Buffer): string {
  const c = new Cursor(payload, 'PasswordMessage');
  const password = c.cstring();
  c.end();
  return password;
}

export function parseSASLInitialResponse(payload: Buffer): { mechanism: string; data: Buffer } {
  const c = new Cursor(payload, 'SASLInitialResponse');
  const mechanism = c.cstring();
  // -1 means "no initial response"; SCRAM always sends one, so it reads as empty.
  const len = c.int32();
  const data = len === -1 ? Buffer.alloc(0) : c.bytes(len);
  c.end();
  return { mechanism, data };
}

// ---- backend messages (server -> client) -----------------------------------

export function parseReadyForQuery(payload: Buffer): 'I' | 'T' | 'E' {
  const s = String.fromCharCode(payload[0] ?? 0);
  if (payload.length !== 1 || (s !== 'I' && s !== 'T' && s !== 'E')) throw violation('ReadyForQuery');
  return s;
}

export interface ErrorFields {
  /** 'V' (never localized, PostgreSQL 9.6+), else 'S' (localized). */
  severity: string;
  /** 'C': the SQLSTATE. */
  code: string;
  /** 'M': the primary message. */
  message: string;
  /** 'D'. */
  detail?: string;
  /** 'H'. */
  hint?: string;
  /**
   * Every field by its one-letter code: S V C M D H, P (position), p/q
   * (internal position/query), W (where), s t c d n (schema, table, column,
   * data type, constraint), F L R (source file, line, routine).
   */
  fields: Record<string, string>;
}

/** ErrorResponse ('E') and NoticeResponse ('N') share one layout. */
export function parseErrorOrNotice(payload: Buffer): ErrorFields {
  const c = new Cursor(payload, 'ErrorResponse');
  const fields: Record<string, string> = {};
  // Fields until a zero byte; a missing final terminator is tolerated (nothing is lost).
  while (!c.done) {
    const fieldType = c.byte();
    if (fieldType === 0) break;
    fields[String.fromCharCode(fieldType)] = c.cstring();
  }
  const out: ErrorFields = {
    severity: fields['V'] ?? fields['S'] ?? '',
    code: fields['C'] ?? '',
    message: fields['M'] ?? '',
    fields,
  };
  if (fields['D'] !== undefined) out.detail = fields['D'];
  if (fields['H'] !== undefined) out.hint = fields['H'];
  return out;
}

export function parseParameterStatus(payload: Buffer): { name: string; value: string } {
  const c = new Cursor(payload, 'ParameterStatus');
  return { name: c.cstring(), value: c.cstring() };
}

export function parseBackendKeyData(payload: Buffer): { pid: number; secret: number } {
  const c = new Cursor(payload, 'BackendKeyData');
  return { pid: c.int32(), secret: c.int32() };
}

export type AuthRequest =
  | { type: 'ok' }
  | { type: 'cleartext' }
  | { type: 'md5'; salt: Buffer }
  | { type: 'sasl'; mechanisms: string[] }
  | { type: 'sasl-continue'; data: Buffer }
  | { type: 'sasl-final'; data: Buffer }
  | { type: 'unsupported'; code: number };

export function parseAuthRequest(payload: Buffer): AuthRequest {
  const c = new Cursor(payload, 'Authentication');
  const code = c.int32();
  switch (code) {
    case 0:
      return { type: 'ok' };
    case 3:
      return { type: 'cleartext' };
    case 5:
      return { type: 'md5', salt: Buffer.from(c.bytes(4)) };
    case 10: {
      const mechanisms: string[] = [];
      for (;;) {
        const m = c.cstring();
        if (m === '') break;
        mechanisms.push(m);
      }
      return { type: 'sasl', mechanisms };
    }
    case 11:
      return { type: 'sasl-continue', data: c.rest() };
    case 12:
      return { type: 'sasl-final', data: c.rest() };
    default:
      return { type: 'unsupported', code };
  }
}

export function parseCommandComplete(payload: Buffer): string {
  return new Cursor(payload, 'CommandComplete').cstring();
}
